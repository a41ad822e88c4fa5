"""The job engine: locked keyed store, settings fingerprint, retry planning."""

import json
import os
import subprocess
import sys
import time

import pytest

from verimath.jobs import (
    DuplicateKeyError,
    JobStore,
    SettingsMismatch,
    check_settings,
    plan_tries,
    settings_of,
    try_key,
)


def test_add_and_resume_skips_done_keys(tmp_path):
    p = tmp_path / "r.jsonl"
    with JobStore(p) as s:
        s.add("a", {"v": 1})
        s.add("b", {"v": 3})
    with JobStore(p) as s:
        assert "a" in s and "b" in s and len(s) == 2
        assert s.get("a")["v"] == 1
        assert [r["key"] for r in s.records()] == ["a", "b"]


def test_add_of_a_taken_key_is_an_error_and_writes_nothing(tmp_path):
    p = tmp_path / "r.jsonl"
    with JobStore(p) as s:
        s.add("a", {"v": 1})
        before = p.read_bytes()
        with pytest.raises(DuplicateKeyError, match="'a'"):
            s.add("a", {"v": 2})
    assert p.read_bytes() == before


def test_damaged_middle_line_is_skipped_reported_and_kept(tmp_path):
    p = tmp_path / "records.jsonl"
    with JobStore(p, key_field="id") as s:
        for i in range(4):
            s.add(f"p{i}", {"v": i})
    lines = p.read_bytes().splitlines(keepends=True)
    lines[1] = b"\x00\x00" + lines[1][5:]  # a damaged block in the middle
    damaged = b"".join(lines)
    p.write_bytes(damaged)
    with JobStore(p, key_field="id") as s:
        assert s.damaged == [2]
        assert sorted(s.keys()) == ["p0", "p2", "p3"]
        assert s.get("p3") == {"id": "p3", "v": 3}
        s.add("p1", {"v": 1})  # the redone record goes to the end
    after = p.read_bytes()
    assert after.startswith(damaged)  # records 3 and 4 (and the damaged line) byte-for-byte


def test_torn_last_line_is_cut_and_file_stays_appendable(tmp_path):
    p = tmp_path / "r.jsonl"
    with JobStore(p) as s:
        s.add("a", {"v": 1})
    with open(p, "a") as f:
        f.write('{"key": "b", "v": ')  # a kill mid-write
    with JobStore(p) as s:
        assert len(s) == 1 and s.damaged == []
        s.add("c", {"v": 3})
    assert [json.loads(x)["key"] for x in p.read_text().splitlines()] == ["a", "c"]


def test_a_terminated_but_damaged_last_line_is_not_cut(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"key": "a"}\n{"key": oops}\n')
    with JobStore(p) as s:
        assert s.damaged == [2] and s.keys() == ["a"]
    assert p.read_text() == '{"key": "a"}\n{"key": oops}\n'


@pytest.mark.parametrize("torn", ["", '{"key": "z"'])
def test_empty_or_torn_only_file(tmp_path, torn):
    p = tmp_path / "r.jsonl"
    p.write_text(torn)
    with JobStore(p) as s:
        assert len(s) == 0
    assert p.read_text() == ""


_WRITER = """
import sys
from verimath.jobs import JobStore
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with JobStore(path) as s:
    for i in range(n):
        s.add(f"{tag}{i}", {"pad": tag * 20000})
"""


def test_two_processes_appending_never_interleave(tmp_path):
    p = tmp_path / "shared.jsonl"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(p), tag, "150"], env=env)
             for tag in ("a", "b")]
    assert [q.wait(timeout=120) for q in procs] == [0, 0]
    lines = p.read_text().splitlines()
    recs = [json.loads(x) for x in lines]  # every line parses: nothing interleaved
    assert len(recs) == 300
    assert {r["key"] for r in recs} == {f"{t}{i}" for t in "ab" for i in range(150)}
    with JobStore(p) as s:
        assert len(s) == 300 and s.damaged == []


def test_a_second_process_sees_the_first_ones_adds(tmp_path):
    p = tmp_path / "cache.jsonl"
    with JobStore(p) as mine, JobStore(p) as theirs:
        theirs.add("k", {"v": 1})
        assert mine.get("k") == {"key": "k", "v": 1}
        with pytest.raises(DuplicateKeyError):
            mine.add("k", {"v": 2})


def test_kill_9_mid_run_loses_nothing_written(tmp_path):
    p = tmp_path / "r.jsonl"
    code = ("from verimath.jobs import JobStore\n"
            f"s = JobStore({str(p)!r})\n"
            "for i in range(10**6):\n    s.add(str(i), {'x': 'y' * 1000})\n")
    proc = subprocess.Popen([sys.executable, "-c", code],
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.time() + 30
    while time.time() < deadline and (not p.exists() or p.stat().st_size < 200_000):
        time.sleep(0.05)
    os.kill(proc.pid, 9)
    proc.wait()
    with JobStore(p) as s:
        keys = s.keys()
    assert keys and keys == [str(i) for i in range(len(keys))]


# ----------------------------------------------------------------------- settings


def test_settings_leave_out_only_the_declared_keys():
    cfg = {"out": "x", "n": 2, "sandbox": {"timeout_s": 5.0, "workers": 2},
           "grader": {"workers": 4, "strict": True}, "k": (1, 2)}
    s = settings_of(cfg, extra={"prompt_hash": "abc"})
    assert s == {"@prompt_hash": "abc", "grader.strict": True, "k": [1, 2], "n": 2,
                 "sandbox.timeout_s": 5.0}
    assert settings_of(cfg, only=("sandbox",)) == {"sandbox.timeout_s": 5.0}


@pytest.mark.parametrize("change,key", [
    ({"sandbox": {"timeout_s": 3.0, "workers": 2}}, "sandbox.timeout_s"),
    ({"n": 4}, "n"),
    ({"new_key": 1}, "new_key"),
])
def test_changed_settings_are_refused_naming_the_key(tmp_path, change, key):
    base = {"n": 2, "sandbox": {"timeout_s": 5.0, "workers": 2}}
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"settings": settings_of(base)}))
    check_settings(man, settings_of({**base, "out": "elsewhere"}), has_work=True)
    with pytest.raises(SettingsMismatch, match=key) as e:
        check_settings(man, settings_of({**base, **change}), has_work=True)
    assert e.value.keys == [key]
    check_settings(man, settings_of({**base, **change}), has_work=False)  # nothing to mix


# ------------------------------------------------------------------------ retries


def test_plan_tries_retries_unjudged_outcomes_a_bounded_number_of_times(tmp_path):
    with JobStore(tmp_path / "s.jsonl") as s:
        s.add("done", {"unjudged": False})
        s.add("flaky", {"unjudged": True})
        s.add("stuck", {"unjudged": True})
        s.add(try_key("stuck", 1), {"unjudged": True})
        todo, stuck = plan_tries(s, ["done", "flaky", "stuck", "new"], retries=1)
        assert todo == {"flaky": 1, "new": 0}
        assert stuck == ["stuck"]
        todo, stuck = plan_tries(s, ["done", "flaky", "stuck"], retries=0)
        assert todo == {} and stuck == ["flaky", "stuck"]


def test_a_folder_without_recorded_settings_is_refused(tmp_path):
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"fingerprint": "abc"}))  # written by an older verimath
    with pytest.raises(SettingsMismatch, match="without a settings record"):
        check_settings(man, {"n": 1}, has_work=True)


def test_a_failed_short_write_leaves_no_partial_line(tmp_path, monkeypatch):
    """Full disk: the first write goes in part, the next raises; nothing half-written stays."""
    import errno

    from verimath.jobs import JobStore

    store = JobStore(tmp_path / "s.jsonl")
    store.add("a", {"v": 1})
    before = (tmp_path / "s.jsonl").read_bytes()
    real = os.write
    calls = {"n": 0}

    def flaky(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", flaky)
    with pytest.raises(OSError):
        store.add("b", {"v": 2})
    monkeypatch.undo()
    assert (tmp_path / "s.jsonl").read_bytes() == before
    store.add("b", {"v": 2})
    again = JobStore(tmp_path / "s.jsonl")
    assert "a" in again and "b" in again and not again.damaged
