"""REPL lifecycle for long jobs: preflight, recycling by proof states, close() with busy
workers, late release, and the LeanDojo / checker version match (scripted doubles)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.prover.conftest import AUDIT_CASES, MINIF2F_HEADER
from verimath.prover.checker import LeanChecker
from verimath.prover.dojo import DojoEnv, dojo_repo_version, require_same_lean
from verimath.prover.repl import ReplConfig, ReplPool, repl_config
from verimath.prover.scripted import RecordedServer
from verimath.prover.types import LeanUnavailable, LeanVersion, ProofTask, ProverInfraError
from verimath.records import VerdictStatus

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
GOOD = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")


def _pool(answer: Any, **cfg: Any) -> tuple[ReplPool, list[RecordedServer]]:
    made: list[RecordedServer] = []

    def factory() -> RecordedServer:
        made.append(RecordedServer(answer))
        return made[-1]

    return ReplPool(ReplConfig(**cfg), LEAN, server_factory=factory), made


def _ok(req: Any) -> Any:
    return {"env": 0} if req.env is None else GOOD["response"]


def test_close_kills_busy_workers_and_late_release_kills() -> None:
    pool, made = _pool(_ok, workers=2)
    busy = pool.acquire()
    idle = pool.acquire()
    pool.release(idle)
    pool.close()
    assert made[0].killed and made[1].killed  # busy and idle alike
    assert pool.stats.killed_at_close == 1
    pool.release(busy)  # late release after close: killed again, never pooled
    assert pool._idle.empty()
    with pytest.raises(ProverInfraError, match="closed"):
        pool.acquire()


def test_close_during_a_request_is_a_crash_not_a_verdict() -> None:
    started, go = threading.Event(), threading.Event()

    def slow(req: Any) -> Any:
        if req.env is None:
            return {"env": 0}
        started.set()
        go.wait(5)
        return ConnectionAbortedError("killed")  # what a killed process gives

    pool, _ = _pool(slow, workers=1)
    checker = LeanChecker(pool, crash_retries=0)
    task = ProofTask(GOOD["formal_statement"], GOOD["header"], GOOD["proof"], "p")
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(checker.check(task)))
    t.start()
    assert started.wait(5)
    pool.close()
    go.set()
    t.join(5)
    assert out[0].status is VerdictStatus.ERROR
    assert pool.stats.killed_at_close == 1


def test_recycled_after_max_proof_states() -> None:
    answer = dict(GOOD["response"])
    answer["sorries"] = [{"proofState": i, "goal": "⊢ True"} for i in range(3)]
    pool, made = _pool(lambda r: {"env": 0} if r.env is None else answer, workers=1,
                       max_proof_states=5)
    pool.run("x", MINIF2F_HEADER)
    pool.run("x", MINIF2F_HEADER)  # 6 states now: retired on release
    pool.run("x", MINIF2F_HEADER)
    assert pool.stats.retired_states == 1 and len(made) == 2 and made[0].killed


def test_setup_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    import lean_interact

    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:v4.9.0\n")
    (tmp_path / "lake-manifest.json").write_text(
        '{"packages": [{"name": "mathlib", "rev": "abc123"}]}')
    monkeypatch.setattr("shutil.which", lambda exe: f"/usr/bin/{exe}")

    def broken(**kw: Any) -> Any:
        raise RuntimeError("git clone failed: no network")

    monkeypatch.setattr(lean_interact, "LeanREPLConfig", broken)
    with pytest.raises(LeanUnavailable, match="doctor --fix"):
        repl_config(ReplConfig(project_dir=str(tmp_path), local_repl_path="/opt/repl"))
    pool = ReplPool(ReplConfig(project_dir=str(tmp_path), local_repl_path="/opt/repl"), LEAN)
    with pytest.raises(LeanUnavailable, match="no network"):
        pool.preflight()
    verdict = LeanChecker(pool).check(ProofTask(GOOD["formal_statement"], GOOD["header"],
                                                GOOD["proof"], "p"))
    assert verdict.status is VerdictStatus.ERROR and "doctor --fix" in verdict.reason


def test_prebuilt_local_repl_path_is_passed(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    import lean_interact

    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:v4.9.0\n")
    (tmp_path / "lake-manifest.json").write_text(
        '{"packages": [{"name": "mathlib", "rev": "abc123"}]}')
    monkeypatch.setattr("shutil.which", lambda exe: f"/usr/bin/{exe}")
    seen: dict[str, Any] = {}

    class Cfg:
        def __init__(self, **kw: Any) -> None:
            seen.update(kw)

        def is_setup(self) -> bool:
            return seen.get("local_repl_path") is not None

    monkeypatch.setattr(lean_interact, "LeanREPLConfig", Cfg)
    repl_config(ReplConfig(project_dir=str(tmp_path), local_repl_path="/opt/repl"))
    assert seen["local_repl_path"] == "/opt/repl" and seen["build_repl"] is False
    seen.clear()
    monkeypatch.setattr("verimath.prover.toolchain.lean_interact_cache_dir",
                        lambda: tmp_path / "none")
    with pytest.raises(LeanUnavailable, match="not built"):
        repl_config(ReplConfig(project_dir=str(tmp_path)))  # no prebuilt REPL, no build
    assert seen == {}  # refused before lean_interact could clone anything


class FakeRepo:
    def __init__(self, lean_version: str, manifest: dict[str, Any] | None) -> None:
        self.lean_version = lean_version
        self.manifest = manifest

    def get_config(self, name: str, num_retries: int = 2) -> Any:
        if self.manifest is None:
            raise FileNotFoundError(name)
        return self.manifest


@pytest.mark.parametrize(("repo", "checker", "ok"), [
    (FakeRepo("v4.9.0", {"packages": [{"name": "mathlib", "rev": "abc123"}]}), LEAN, True),
    (FakeRepo("v4.9.0", None), LEAN, True),  # no manifest: only the toolchain is compared
    (FakeRepo("v4.15.0", None), LEAN, False),
    (FakeRepo("v4.9.0", {"packages": [{"name": "mathlib", "rev": "fff"}]}), LEAN, False),
    (FakeRepo("v4.15.0", None), LeanVersion(None, None), True),  # unknown: not compared
])
def test_dojo_repo_must_match_the_checker(repo: FakeRepo, checker: LeanVersion,
                                          ok: bool) -> None:
    version = dojo_repo_version(repo)
    if ok:
        require_same_lean(version, checker)
    else:
        with pytest.raises(LeanUnavailable, match="LeanDojo repo"):
            require_same_lean(version, checker)


def test_dojo_env_preflight_refuses_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import verimath.prover.dojo as dojo

    real = dojo.default_dojo_factory
    monkeypatch.setattr(dojo, "default_dojo_factory", lambda cfg, expected: real(
        cfg, expected, repo=FakeRepo("v4.15.0", None)))
    env = DojoEnv(expected_lean=LEAN)
    with pytest.raises(LeanUnavailable, match="v4.15.0"):
        env.preflight()


def test_doctor_fix_without_lean_says_why(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from verimath.cli import main as cli

    monkeypatch.setattr("shutil.which", lambda exe: None)
    assert cli(["doctor", "--fix"]) == 1
    err = capsys.readouterr().err
    assert "doctor --fix" in err and "lake" in err and "Traceback" not in err


def test_doctor_fix_builds_through_repl_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import verimath.prover.repl
    from verimath.commands.doctor_cmd import fix_lean

    calls: list[Any] = []
    monkeypatch.setattr(verimath.prover.repl, "repl_config", lambda cfg, build=False: calls.append(
        (cfg.project_dir, build)))
    assert fix_lean("/some/project") == 0 and calls == [("/some/project", True)]
