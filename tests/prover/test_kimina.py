"""The kimina-lean-server backend against a local server on 127.0.0.1.

The server answers from the real REPL transcripts (``$VERIMATH_DATA/lean_repl``) and, for the
full audit, from the recorded audit cases, the way a real REPL answers a file that holds the
header, the reference statement and the checked command.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.prover.conftest import AUDIT_CASES
from tests.prover.kimina_server import KiminaStandIn, audit_answer
from tests.prover.transcript_repl import read_transcript, request_key
from tests.prover.transcripts import lean_repl_dir, transcripts
from verimath.prover.checker import LeanChecker
from verimath.prover.kimina import KiminaConfig, KiminaRunner
from verimath.prover.types import CompileStatus, ProofTask
from verimath.records import VerdictStatus


def _codes(req: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, code) of each proof in a request body, /api/check or /verify."""
    if "snippets" in req:
        return [(s["id"], s["code"]) for s in req["snippets"]]
    return [(c["custom_id"], c["proof"]) for c in req["codes"]]


def _runner(url: str, **kw: Any) -> KiminaRunner:
    kw.setdefault("backoff_s", 0.0)
    return KiminaRunner(KiminaConfig(url=url, **kw))


def _transcript_answer(name: str) -> Any:
    """Answer a file's body with the transcript's answer to the same command (after imports)."""
    pairs = read_transcript(lean_repl_dir() / f"{name}.in")
    table = {request_key({"cmd": r["cmd"]}): json.loads(t) for r, t in pairs if "cmd" in r}

    def answer(header: str, body: str) -> Any:
        return table.get(request_key({"cmd": body}), "no such command in the transcript")

    return answer


needs_transcripts = pytest.mark.skipif(not transcripts(), reason="no REPL transcripts")


@needs_transcripts
@pytest.mark.parametrize("api", ["check", "verify"])
@pytest.mark.parametrize("anchor", ["file", "body"])
def test_compile_filter_over_kimina_from_transcript(anchor: str, api: str) -> None:
    with KiminaStandIn(_transcript_answer("mathlib/exact"), anchor=anchor) as srv:
        checker = LeanChecker(_runner(srv.url, api=api))
        try:
            ok = checker.check_statement("theorem test : 0 < 1 := by", "import Mathlib")
        finally:
            checker.close()
    assert ok.status is CompileStatus.OK and ok.goal == "⊢ 0 < 1", ok
    [req] = srv.requests
    assert _codes(req)[0][1].startswith("import Mathlib\n\ntheorem test : 0 < 1")
    if api == "verify":
        assert req["infotree_type"] is None and req["disable_cache"] is False
    else:
        assert req["infotree"] is None and req["reuse"] is True and req["debug"] is False


@needs_transcripts
def test_positions_of_a_headerless_file_are_the_repl_s() -> None:
    with KiminaStandIn(_transcript_answer("core/no_goal_sorry")) as srv:
        runner = _runner(srv.url)
        try:
            cmd = read_transcript(lean_repl_dir() / "core/no_goal_sorry.in")[0][0]["cmd"]
            lr = runner.run(cmd, "")
        finally:
            runner.close()
    assert [(m.severity, m.line) for m in lr.messages] == [("error", 2), ("error", 2)]
    assert lr.time_s == 0.25


#: every case on a current server (file lines); the Lean-run ones also on an older one.
KIMINA_CASES = [(c, "file") for c in AUDIT_CASES] + [
    (c, "body") for c in AUDIT_CASES if "response" in c]


@pytest.mark.parametrize("api", ["check", "verify"])
@pytest.mark.parametrize(("case", "anchor"), KIMINA_CASES,
                         ids=[f"{c['id']}-{a}" for c, a in KIMINA_CASES])
def test_full_audit_over_kimina(case: dict[str, Any], anchor: str, api: str) -> None:
    with KiminaStandIn(audit_answer(case), anchor=anchor) as srv:
        checker = LeanChecker(_runner(srv.url, retries=1, api=api), crash_retries=1)
        try:
            v = checker.check(ProofTask(case["formal_statement"], case["header"], case["proof"],
                                        "p"))
        finally:
            checker.close()
    exp = case["expected"]
    assert v.status == VerdictStatus(exp["status"]), v.reason
    assert v.detail.get("failed") == exp.get("failed"), v.reason
    if "rejected_before_lean" in case:
        assert srv.requests == []


def _good() -> tuple[dict[str, Any], ProofTask]:
    case = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")
    return case, ProofTask(case["formal_statement"], case["header"], case["proof"], "p")


def test_retries_transport_failures_then_succeeds() -> None:
    case, task = _good()
    with KiminaStandIn(audit_answer(case), fail_first=2) as srv:
        checker = LeanChecker(_runner(srv.url, retries=3))
        try:
            v = checker.check(task)
        finally:
            checker.close()
    assert v.status is VerdictStatus.CORRECT and len(srv.requests) == 3


@pytest.mark.parametrize(("kind", "status", "fragment"), [
    ("always_503", VerdictStatus.ERROR, "HTTP 503"),
    ("wrong_key", VerdictStatus.ERROR, "API key"),
    ("unreachable", VerdictStatus.ERROR, "unreachable"),
])
def test_server_failures_are_never_wrong(kind: str, status: VerdictStatus,
                                         fragment: str) -> None:
    case, task = _good()
    with KiminaStandIn(audit_answer(case), fail_first=99 if kind == "always_503" else 0,
                       api_key="s3cret" if kind == "wrong_key" else None) as srv:
        url = srv.url
        if kind == "unreachable":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed when the block ends
        checker = LeanChecker(_runner(url, retries=1, api_key="wrong"), crash_retries=0)
        try:
            v = checker.check(task)
        finally:
            checker.close()
    assert v.status is status and fragment in v.reason, v.reason


def test_api_key_header_is_sent() -> None:
    case, task = _good()
    with KiminaStandIn(audit_answer(case), api_key="s3cret") as srv:
        checker = LeanChecker(_runner(srv.url, api_key="s3cret"))
        try:
            assert checker.check(task).status is VerdictStatus.CORRECT
        finally:
            checker.close()


def test_batches_respect_batch_size() -> None:
    case, task = _good()
    with KiminaStandIn(audit_answer(case)) as srv:
        checker = LeanChecker(_runner(srv.url, batch_size=3, concurrency=2))
        try:
            verdicts = checker.check_many([task] * 7)
        finally:
            checker.close()
    assert [v.status for v in verdicts] == [VerdictStatus.CORRECT] * 7
    sizes = [len(_codes(r)) for r in srv.requests]
    assert sum(sizes) == 7 and max(sizes) <= 3
    assert all(len({i for i, _ in _codes(r)}) == len(_codes(r)) for r in srv.requests)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="http"):
        KiminaConfig(url="localhost:8000")
    with pytest.raises(ValueError, match="api"):
        KiminaConfig(url="http://x", api="v2")
    with pytest.raises(ValueError, match="batch_size"):
        KiminaConfig(url="http://x", batch_size=0)


def _flat(d: dict[str, Any], pre: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        out += _flat(v, f"{pre}{k}.") if isinstance(v, dict) else [(f"{pre}{k}", v)]
    return out


def test_prove_config_selects_kimina(monkeypatch: pytest.MonkeyPatch) -> None:
    from verimath.config import load_config
    from verimath.prover.evaluation import ProveConfig, build_checker

    def build_config(cls: Any, d: dict[str, Any]) -> Any:
        return load_config(cls, None, [f"{k}={json.dumps(v)}" for k, v in _flat(d)])

    case, task = _good()
    with KiminaStandIn(audit_answer(case), api_key="envkey") as srv:
        monkeypatch.setenv("KIMINA_API_KEY", "envkey")
        cfg = build_config(ProveConfig, {"prover": {"backend": "kimina", "url": srv.url,
                                                    "toolchain": "leanprover/lean4:v4.15.0"}})
        checker, pool = build_checker(cfg)
        try:
            v = checker.check(task)
        finally:
            checker.close()
    assert pool is None and v.status is VerdictStatus.CORRECT
    assert v.detail["lean"]["toolchain"] == "leanprover/lean4:v4.15.0"
    with pytest.raises(ValueError, match="bfs"):
        build_checker(build_config(ProveConfig, {"mode": "bfs", "prover": {
            "backend": "kimina", "url": "http://127.0.0.1:1"}}))
    with pytest.raises(Exception, match="prover.url"):
        build_config(ProveConfig, {"prover": {"backend": "kimina"}})


@needs_transcripts
def test_datagen_formal_prover_selects_kimina() -> None:
    """datagen's compile filter runs on a kimina-lean-server (`formal.prover.backend: kimina`)."""
    from verimath.config import load_config
    from verimath.datagen.config import DatagenConfig
    from verimath.datagen.formal import build_checker as datagen_checker

    with KiminaStandIn(_transcript_answer("mathlib/exact")) as srv:
        cfg = load_config(DatagenConfig, None, [
            "mode=formal", "formal.prover.backend=kimina", f"formal.prover.url={srv.url}"])
        checker = datagen_checker(cfg)
        try:
            ok = checker.check_statement("theorem test : 0 < 1 := by", "import Mathlib")
        finally:
            checker.close()
    assert isinstance(checker, LeanChecker) and ok.status is CompileStatus.OK
    assert len(srv.requests) == 1
    with pytest.raises(Exception, match="prover.url"):
        load_config(DatagenConfig, None, ["formal.prover.backend=kimina"])
