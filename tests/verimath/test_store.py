import json
import os
import subprocess
import sys

import pytest

from verimath.store import ResultStore, atomic_write_json, read_jsonl


def test_add_and_resume_skips_done_keys(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        assert s.add("a", {"v": 1})
        assert not s.add("a", {"v": 2})  # duplicate key is a no-op
        assert s.add("b", {"v": 3})
    with ResultStore(p) as s:
        assert "a" in s and "b" in s and len(s) == 2
        assert s.get("a")["v"] == 1
        assert [r["key"] for r in s.records()] == ["a", "b"]


def test_torn_last_line_is_dropped_and_file_stays_appendable(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        s.add("a", {"v": 1})
    with open(p, "a") as f:
        f.write('{"key": "b", "v": ')  # a kill mid-write
    with ResultStore(p) as s:
        assert len(s) == 1
        s.add("c", {"v": 3})
    lines = p.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["a", "c"]


def test_kill_9_mid_run_loses_nothing_written(tmp_path):
    p = tmp_path / "r.jsonl"
    code = (
        "import sys, time\nfrom verimath.store import ResultStore\n"
        f"s = ResultStore({str(p)!r})\n"
        "for i in range(10**6):\n    s.add(str(i), {'x': 'y' * 1000})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    import time

    deadline = time.time() + 30
    while time.time() < deadline and (not p.exists() or p.stat().st_size < 200_000):
        time.sleep(0.05)
    os.kill(proc.pid, 9)
    proc.wait()
    with ResultStore(p) as s:
        n = len(s)
        keys = [r["key"] for r in s.records()]
    assert n > 0
    assert keys == [str(i) for i in range(n)]  # a prefix, in order, no gaps or duplicates


def test_atomic_write_and_read_jsonl_reports_bad_lines(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    j = tmp_path / "in.jsonl"
    j.write_text('{"a": 1}\nnot json\n\n[1, 2]\n')
    got = list(read_jsonl(j))
    assert got[0] == (1, {"a": 1})
    assert got[1][0] == 2 and isinstance(got[1][1], ValueError) and ":2:" in str(got[1][1])
    assert got[2][0] == 4 and isinstance(got[2][1], ValueError)


@pytest.mark.parametrize("torn", ["", '{"key": "z"'])
def test_empty_or_torn_only_file(tmp_path, torn):
    p = tmp_path / "r.jsonl"
    p.write_text(torn)
    with ResultStore(p) as s:
        assert len(s) == 0
    assert p.read_text() == ""
