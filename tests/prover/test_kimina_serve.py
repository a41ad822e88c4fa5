"""kimina-client against ``verimath serve``'s ``/api/check`` (our REPL pool + proof audit).

Lean is the same REPLAY as for the real kimina-lean-server (``lean_repl_replay.py``: recorded
answers only, a dead REPL on anything else), started by ``lean_interact.LeanServer``'s own
protocol code inside our :class:`~verimath.prover.repl.ReplPool`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.prover.kimina_real import REPLAY, apply_typeddict_shim
from tests.prover.transcripts import ScriptLeanServer, transcripts
from tests.reasoning.serve_util import ThreadServer, free_port
from verimath.prover.kimina_serve import KiminaCheckService, audit_findings, split_header
from verimath.prover.repl import ReplConfig, ReplPool
from verimath.prover.types import LeanVersion
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.reasoning.service.app import ServeConfig

pytestmark = pytest.mark.skipif(not transcripts(), reason="no Lean REPL transcripts")
apply_typeddict_shim()  # SHIM (test only): kimina_client's TypedDicts on Python 3.11
kc = pytest.importorskip("kimina_client")  # a dev dependency


class ReplayLeanServer(ScriptLeanServer):
    """``lean_interact.LeanServer`` whose process is the strict REPLAY (not Lean)."""

    def __init__(self, log: Path) -> None:  # noqa: D107 - documented on the class
        super().__init__([sys.executable, "-S", str(REPLAY), "--log", str(log),
                          *map(str, transcripts())])


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Any:
    log = tmp_path_factory.mktemp("replay") / "replay.jsonl"
    # one check per REPL process: the replay hands out the env numbers it recorded, so a
    # second header-less command in one process would collide with the first one's env 0
    pool = ReplPool(ReplConfig(workers=2, timeout_s=20.0, max_uses=1),
                    LeanVersion("REPLAY of leanprover/lean4:v4.33.0-rc2 transcripts", None),
                    server_factory=lambda: ReplayLeanServer(log))
    box = Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=1))
    cfg = ServeConfig(port=free_port(), sandbox=box.config, max_batch=8)
    with ThreadServer(cfg, sandbox=box, lean=KiminaCheckService(pool)) as s:
        yield s
    box.close()


SNIPPETS = {
    "valid": "def f := 37",
    "sorry": "def f : Nat := sorry",
    "lean_error": "def f : Nat := _",
    "mathlib_sorry": "import Mathlib\n\ntheorem test : 0 < 1 := by sorry",
    "server_error": "theorem not_recorded : 2 = 2 := rfl",  # the replay dies: could not judge
    "audit": "axiom cheat : 1 = 2\ntheorem t : 1 = 2 := cheat",  # Lean says valid; audit no
    "audit_native": "theorem t : 2 + 2 = 4 := by native_decide",
}
EXPECTED = {"valid": "valid", "sorry": "sorry", "lean_error": "lean_error",
            "mathlib_sorry": "sorry", "server_error": "server_error",
            "audit": "lean_error", "audit_native": "lean_error"}


def test_kimina_client_against_verimath_serve(serve: Any) -> None:
    client = kc.KiminaClient(api_url=serve.url, n_retries=1)
    resp = client.check([kc.Snippet(id=k, code=v) for k, v in SNIPPETS.items()], timeout=20,
                        show_progress=False)
    got = {r.id: r.analyze().status.value for r in resp.results}
    assert got == EXPECTED, [(r.id, r.error) for r in resp.results if r.error]
    by_id = {r.id: r for r in resp.results}
    assert "verimath audit" in by_id["audit"].response["messages"][0]["data"]
    assert "could not judge" in by_id["server_error"].error
    # positions are relative to the body after the imports, as kimina-lean-server 2.1.3 says
    sorry = by_id["mathlib_sorry"].response["sorries"][0]
    assert sorry["pos"] == {"line": 1, "column": 27} and sorry["goal"] == "⊢ 0 < 1"


def test_bad_requests_are_422_naming_the_field(serve: Any) -> None:
    import httpx

    r = httpx.post(f"{serve.url}/api/check", json={"snippets": [{"id": 1, "code": "x"}]})
    assert r.status_code == 422 and "id" in r.text
    r = httpx.post(f"{serve.url}/api/check", json={"snippets": []})
    assert r.status_code == 422 and "snippets" in r.text


@pytest.mark.parametrize(("code", "bad"), [
    ("theorem t : 1 = 1 := rfl", False),
    ("theorem t : 1 = 1 := by sorry", False),
    ("#check Nat\ntheorem t : 1 = 1 := rfl", False),
    ("axiom a : False", True),
    ("@[implemented_by g] def f : Nat := 1", True),
    ("set_option debug.skipKernelTC true in\ntheorem t : 1 = 1 := rfl", True),
    ("macro \"cheat\" : tactic => `(tactic| sorry)", True),
])
def test_audit_findings(code: str, bad: bool) -> None:
    assert bool(audit_findings(split_header(code)[1])) is bad


def test_schemathesis_finds_no_contract_failures_on_api_check(serve: Any, tmp_path) -> None:
    """``/api/check`` under schemathesis (the serve contract test runs without a Lean)."""
    from tests.reasoning.test_serve_contract import run_schemathesis

    run_schemathesis(serve.url, tmp_path, "--include-path", "/api/check",
                     "--max-examples", "10")
