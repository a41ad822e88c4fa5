"""Whole-proof checking: the audit of :mod:`verimath.prover.audit` on top of a Lean runner.

:class:`LeanChecker` implements :class:`verimath.prover.types.ProofChecker`. It needs a
:class:`LeanRunner`: something that runs a Lean command in a header's environment and returns
a :class:`verimath.prover.audit.LeanResponse`. :class:`verimath.prover.repl.ReplPool` is the real
one (a pool of Lean REPL processes); :class:`verimath.prover.scripted.RecordedRunner` replays
recorded REPL responses so the whole audit runs in tests without Lean.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from verimath.prover.audit import (
    AuditReport,
    CheckedCommand,
    LeanResponse,
    audit_response,
    audit_text_only,
    statement_findings,
)
from verimath.prover.cache import VerdictCache
from verimath.prover.lean_text import drop_proof_marker
from verimath.prover.types import (
    CompileStatus,
    LeanCrash,
    LeanTimeout,
    LeanVersion,
    ProofTask,
    ProverInfraError,
    StatementCheck,
)
from verimath.records import Verdict

log = logging.getLogger(__name__)


class LeanRunner(Protocol):
    """Runs Lean commands in the environment of a header (imports paid once per process)."""

    @property
    def lean(self) -> LeanVersion:
        """Toolchain and Mathlib revision of the Lean behind this runner."""
        ...

    @property
    def parallelism(self) -> int:
        """How many ``run`` calls may usefully run at once."""
        ...

    def run(self, code: str, header: str, timeout_s: float | None = None,
            setup: str = "") -> LeanResponse:
        """Run ``code`` after ``header`` (and ``setup``); returns a LeanResponse.

        ``header`` and ``setup`` each become an environment that a process elaborates once
        and reuses: ``code`` runs in ``header`` + ``setup`` (``setup`` may be "").

        Raises:
            LeanTimeout: no answer within ``timeout_s`` (the process was killed).
            LeanCrash: the process died or answered garbage (it was killed).
            ProverInfraError: anything else that prevents a judgment (e.g. the header or the
                setup does not elaborate).
        """
        ...

    def close(self) -> None:
        """Stop all processes."""
        ...


@dataclass(frozen=True)
class LeanBackendConfig:
    """Where whole-proof checks run (the ``prover:`` section of a prove config).

    Attributes:
        backend: ``repl`` (a local pool of Lean REPLs, see ``repl:``) or ``kimina`` (a
            kimina-lean-server, :mod:`verimath.prover.kimina`).
        url: the kimina-lean-server base URL (required for ``kimina``).
        api_key_env: environment variable holding its API key (the key itself is never put
            in a config, so it never reaches a run's manifest).
        batch_size: proofs per ``/verify`` request.
        concurrency: requests in flight at once.
        toolchain: the server's Lean toolchain to record (None: unknown).
        mathlib_rev: the server's Mathlib revision to record (None: unknown).
    """

    backend: str = "repl"
    url: str | None = None
    api_key_env: str = "KIMINA_API_KEY"
    batch_size: int = 8
    concurrency: int = 4
    toolchain: str | None = None
    mathlib_rev: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("repl", "kimina"):
            raise ValueError(f"prover.backend={self.backend!r}: use 'repl' or 'kimina'")
        if self.backend == "kimina" and not self.url:
            raise ValueError("prover.backend 'kimina' needs prover.url (http://host:port)")

    def kimina_runner(self, timeout_s: float) -> LeanRunner:
        """The :class:`verimath.prover.kimina.KiminaRunner` of this config."""
        import os

        from verimath.prover.kimina import KiminaConfig, KiminaRunner

        assert self.url is not None
        return KiminaRunner(KiminaConfig(
            url=self.url, api_key=os.environ.get(self.api_key_env) or "", timeout_s=timeout_s,
            batch_size=self.batch_size, concurrency=self.concurrency,
            toolchain=self.toolchain, mathlib_rev=self.mathlib_rev))


class LeanChecker:
    """The proof audit over a :class:`LeanRunner` (implements ``ProofChecker``).

    Args:
        runner: where Lean commands run.
        cache: optional verdict cache (judged verdicts only).
        timeout_s: wall-clock limit per check (None: the runner's default).
        crash_retries: how often a crashed check is retried on a fresh process before the
            verdict becomes ERROR.
    """

    def __init__(self, runner: LeanRunner, *, cache: VerdictCache | None = None,
                 timeout_s: float | None = None, crash_retries: int = 1) -> None:
        if crash_retries < 0:
            raise ValueError("crash_retries must be >= 0")
        self.runner = runner
        self.cache = cache
        self.timeout_s = timeout_s
        self.crash_retries = crash_retries

    @property
    def lean(self) -> LeanVersion:
        """Toolchain and Mathlib revision of the runner."""
        return self.runner.lean

    def call_budget_s(self) -> float:
        """Upper bound (s) of one :meth:`check`'s Lean time.

        Each try, its CPU-timed re-check and a fresh process's header elaboration. A caller's
        own deadline for one check (a reward's safety net) should not be shorter.
        """
        rcfg = getattr(self.runner, "config", None)
        limit = self.timeout_s or getattr(rcfg, "timeout_s", None) or 120.0
        factor = getattr(rcfg, "retry_wall_factor", 0.0)
        header = getattr(rcfg, "header_timeout_s", 0.0)  # a fresh process imports the header
        return (limit * (1 + factor) + header) * (self.crash_retries + 1) + 30.0

    @property
    def parallelism(self) -> int:
        """How many checks run at once (the runner's)."""
        return max(1, int(getattr(self.runner, "parallelism", 1)))

    def _run(self, code: str, header: str, setup: str = ""
             ) -> tuple[LeanResponse | None, str | None]:
        """``(response, None)`` or ``(None, infra reason)``; crashes are retried."""
        reason = "lean crashed"
        for attempt in range(self.crash_retries + 1):
            try:
                return self.runner.run(code, header, self.timeout_s, setup), None
            except LeanTimeout:
                return None, "timeout"
            except LeanCrash as e:
                log.warning("lean crashed (attempt %d): %s", attempt + 1, e)
                reason = f"lean crashed: {e}"
            except ProverInfraError as e:
                return None, str(e)
        return None, reason

    def check(self, task: ProofTask) -> Verdict:
        """Audit one proof (see :class:`verimath.prover.types.ProofChecker`)."""
        lean = self.lean
        if self.cache is not None and (hit := self.cache.get(task, lean)) is not None:
            return hit
        t0 = time.monotonic()
        prepared = audit_text_only(task)
        if isinstance(prepared, AuditReport):
            report = prepared
        else:
            report = self._audit_in_lean(prepared, task.header)
        verdict = report.to_verdict(task, lean, time.monotonic() - t0)
        if self.cache is not None:
            self.cache.put(task, lean, verdict)
        return verdict

    def _audit_in_lean(self, cmd: CheckedCommand, header: str) -> AuditReport:
        response, infra = self._run(cmd.code, header, cmd.setup)
        if response is None:
            return AuditReport(passed=("forbidden_construct", "statement_pinning"), infra=infra)
        return audit_response(cmd, response)

    def check_many(self, tasks: Sequence[ProofTask]) -> list[Verdict]:
        """``check`` of each task, ``runner.parallelism`` at a time, in input order."""
        if len(tasks) <= 1 or self.runner.parallelism <= 1:
            return [self.check(t) for t in tasks]
        with ThreadPoolExecutor(max_workers=min(self.runner.parallelism, len(tasks))) as ex:
            return list(ex.map(self.check, tasks))

    def check_statement(self, formal_statement: str, header: str = "") -> StatementCheck:
        """Compile filter: does ``formal_statement`` elaborate with ``sorry`` as its proof.

        Returns:
            OK (only the expected sorry warning), ERROR (Lean errors: listed), REJECTED (not a
            single clean declaration: no Lean run), TIMEOUT or INFRA_ERROR.
        """
        lean = self.lean
        bad = statement_findings(formal_statement)
        if bad:
            return StatementCheck(CompileStatus.REJECTED, tuple(bad), None, lean)
        t0 = time.monotonic()
        code = drop_proof_marker(formal_statement) + " := by\n  sorry\n"
        response, infra = self._run(code, header)
        elapsed = time.monotonic() - t0
        if response is None:
            status = CompileStatus.TIMEOUT if infra == "timeout" else CompileStatus.INFRA_ERROR
            return StatementCheck(status, (str(infra),), None, lean, elapsed)
        errors = tuple(response.errors)
        goal = response.sorries[0] if response.sorries else None
        status = CompileStatus.ERROR if errors else CompileStatus.OK
        return StatementCheck(status, errors, goal, lean, elapsed)

    def close(self) -> None:
        """Close the runner and the cache."""
        self.runner.close()
        if self.cache is not None:
            self.cache.close()
