"""Our kimina backend and the official kimina-client against the REAL kimina-lean-server.

The server is PyPI ``kimina-ast-server`` 2.1.3 in its own venv (``.cache/kimina-venv``, built
once), started on 127.0.0.1; its ``lake env <repl>`` reaches a REPLAY of the real Lean REPL
transcripts (``lean_repl_replay.py``: recorded answers only, a dead REPL on anything else).
Shims are listed and labelled in ``kimina_real.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.prover.kimina_real import KiminaServer, apply_typeddict_shim, kimina_venv, make_workspace
from tests.prover.transcript_repl import read_transcript
from tests.prover.transcripts import lean_repl_dir, transcripts
from verimath.prover.checker import LeanChecker
from verimath.prover.kimina import KiminaConfig, KiminaRunner
from verimath.prover.responses import parse_repl_json
from verimath.prover.types import CompileStatus, LeanCrash, LeanTimeout, LeanUnavailable

pytestmark = pytest.mark.skipif(not transcripts(), reason="no Lean REPL transcripts")

EXACT = ("theorem test : 0 < 1", "import Mathlib")  # mathlib/exact: import, then the sorry
#: mathlib/exact's second command, exactly as recorded (the replay matches text exactly)
EXACT_CMD = "theorem test : 0 < 1 := by sorry"


def _headerless() -> list[tuple[str, str]]:
    """(name, cmd) of every transcript whose first command is a plain header-less ``cmd``."""
    out, seen = [], set()
    for p in transcripts():
        req, _ = read_transcript(p)[0]
        if set(req) == {"cmd"} and not req["cmd"].lstrip().startswith("import") \
                and req["cmd"] not in seen:
            seen.add(req["cmd"])
            out.append((f"{p.parent.name}/{p.name.removesuffix('.in')}", req["cmd"]))
    return out


def _start(tmp: Path, **settings: Any) -> KiminaServer:
    delay = settings.pop("delay_s", 0.0)
    log = tmp / "replay.jsonl"
    ws = make_workspace(tmp, transcripts(), log, delay_s=delay)
    return KiminaServer(kimina_venv(), ws, log, **settings)


@pytest.fixture(scope="module")
def kimina(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KiminaServer]:
    """One REPL per snippet (``MAX_REPL_USES=1``): header + body, nothing the replay lacks."""
    with _start(tmp_path_factory.mktemp("kimina"), max_repl_uses=1) as srv:
        yield srv


def _runner(url: str, **kw: Any) -> KiminaRunner:
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("timeout_s", 20.0)
    return KiminaRunner(KiminaConfig(url=url, **kw))


def _new_requests(srv: KiminaServer, before: int) -> list[Any]:
    return [r["request"] for r in srv.replay_requests()[before:]]


@pytest.mark.parametrize("api", ["check", "verify"])
def test_header_then_body_on_the_real_server(kimina: KiminaServer, api: str) -> None:
    """kimina sends the header alone, then the body in env 0 with ``gc``; positions map back
    to lines of our code (2.1.3 reports them relative to the body)."""
    n = len(kimina.replay_requests())
    runner = _runner(kimina.url, api=api)
    try:
        lr = runner.run(EXACT_CMD, "import Mathlib")
    finally:
        runner.close()
    assert [(m.severity, m.line, m.column) for m in lr.messages] == [("warning", 1, 8)]
    assert [s.goal for s in lr.sorry_info] == ["⊢ 0 < 1"]
    assert _new_requests(kimina, n) == [
        {"cmd": "import Mathlib"}, {"cmd": EXACT_CMD, "env": 0, "gc": True}]


def test_every_headerless_transcript_reads_the_same_through_the_server(
        kimina: KiminaServer) -> None:
    """Each recorded answer, sent through the real server, parses exactly as read directly."""
    cases = _headerless()
    assert len(cases) >= 30
    runner = _runner(kimina.url, concurrency=2, batch_size=4)
    try:
        for name, cmd in cases:
            got = runner.run(cmd, "")
            recorded = next(a for r, a in read_transcript(lean_repl_dir() / f"{name}.in")
                            if r == {"cmd": cmd})
            want = parse_repl_json(json.loads(recorded, strict=False))
            assert (got.messages, got.sorries, got.env) == (
                want.messages, want.sorries, want.env), name
    finally:
        runner.close()


def test_unrecorded_command_is_a_dead_repl_not_a_verdict(kimina: KiminaServer) -> None:
    n = len(kimina.replay_requests())
    runner = _runner(kimina.url, retries=0)
    try:
        with pytest.raises(LeanCrash, match="Snippet execution failed"):
            runner.run("theorem not_recorded : 2 = 2 := rfl", "")
    finally:
        runner.close()
    [seen] = kimina.replay_requests()[n:]
    assert seen["answered"] is False and "not_recorded" in seen["request"]["cmd"]


def test_reused_repl_health_check_is_not_recorded_and_kimina_replaces_it(
        tmp_path: Path) -> None:
    """With REPL reuse (kimina's default) a reused REPL first gets ``#eval 1`` in env 0: not in
    the transcripts, so the replay dies and kimina starts a fresh REPL: same answer."""
    with _start(tmp_path) as srv:
        runner = _runner(srv.url)
        try:
            first, second = (runner.run(EXACT_CMD, "import Mathlib") for _ in range(2))
        finally:
            runner.close()
        log = srv.replay_requests()
    assert (first.messages, first.sorry_info) == (second.messages, second.sorry_info)
    assert first.sorry_info
    assert [(r["request"], r["answered"]) for r in log if not r["answered"]] == [
        ({"cmd": "#eval 1", "env": 0, "gc": True}, False)]
    assert [r["request"]["cmd"] for r in log].count("import Mathlib") == 2


def test_lean_timeout_is_the_proof_s_http_timeout_is_could_not_judge(tmp_path: Path) -> None:
    """The server's own limit (a slow REPL) -> LeanTimeout (timeout_error, judged); our HTTP
    client giving up on a silent server -> LeanCrash (could not judge)."""
    with _start(tmp_path, delay_s=2.5, max_repl_uses=1) as srv:
        runner = _runner(srv.url, timeout_s=1.0, retries=0)
        silent = _runner(srv.url, timeout_s=10.0, http_timeout_s=0.5, retries=0)
        try:
            with pytest.raises(LeanTimeout, match="timed out in 1"):
                runner.run("def f : Nat := sorry", "")
            with pytest.raises(LeanCrash, match="HTTP limit"):
                silent.run("def f : Nat := sorry", "")
        finally:
            runner.close()
            silent.close()
        checker = LeanChecker(_runner(srv.url, timeout_s=1.0, retries=0))
        try:
            assert checker.check_statement(*EXACT).status is CompileStatus.TIMEOUT
        finally:
            checker.close()


def test_api_key_is_what_the_real_server_reads(tmp_path: Path) -> None:
    with _start(tmp_path, api_key="s3cret", max_repl_uses=1) as srv:
        good = LeanChecker(_runner(srv.url, api_key="s3cret"))
        bad = _runner(srv.url, api_key="wrong", retries=0)
        try:
            assert good.runner.run(EXACT_CMD, "import Mathlib").sorry_info
            with pytest.raises(LeanUnavailable, match="API key"):
                bad.run("def f : Nat := sorry", "")
        finally:
            good.close()
            bad.close()


def test_official_kimina_client_reads_the_real_server(kimina: KiminaServer,
                                                      tmp_path: Path) -> None:
    """kimina-client's own statuses on the real server, and our runner's reading of each."""
    apply_typeddict_shim()  # SHIM (test only): see kimina_real.apply_typeddict_shim
    from kimina_client import KiminaClient, Snippet, SnippetStatus

    snippets = {"valid": "def f := 37", "sorry": "def f : Nat := sorry",
                "lean_error": "def f : Nat := _",
                "server_error": "theorem not_recorded : 2 = 2 := rfl"}
    client = KiminaClient(api_url=kimina.url, n_retries=1)
    resp = client.check([Snippet(id=k, code=v) for k, v in snippets.items()], timeout=20,
                        show_progress=False)
    got = {r.id: r.analyze().status for r in resp.results}
    assert got == {k: SnippetStatus(k) for k in snippets}
    lean_ok = {"valid", "sorry", "lean_error"}
    runner = _runner(kimina.url, retries=0)
    try:
        for status, code in snippets.items():
            if status in lean_ok:
                runner.run(code, "")  # judged by Lean: a response, no exception
            else:
                with pytest.raises(LeanCrash):
                    runner.run(code, "")
    finally:
        runner.close()
    with _start(tmp_path, delay_s=2.5, max_repl_uses=1) as slow:
        r = KiminaClient(api_url=slow.url, n_retries=1).check(
            "def f : Nat := sorry", timeout=1, show_progress=False)
    assert [x.analyze().status for x in r.results] == [SnippetStatus.timeout_error]
