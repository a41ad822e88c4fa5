"""The Lean REPL backend (``lean-interact``): a pool of REPL processes and a REPL ``ProofEnv``.

:class:`ReplPool` runs whole-proof checks (it is the :class:`prover.checker.LeanRunner` of the
real checker). Each worker is one ``lean_interact.LeanServer`` (one ``repl`` process under
``lake env``) with a hard memory cap (``RLIMIT_AS`` through ``LeanREPLConfig.
memory_hard_limit_mb``). A worker keeps the environment of each header it has elaborated, so
``import Mathlib`` is paid once per process, not once per proof. A worker is replaced — killed,
never reused — after ``max_uses`` checks, after any timeout, and after any crash or unreadable
answer. (``lean_interact.LeanServerPool`` restarts servers in place and never retires them by
use count, which is why the pool is ours.)

:class:`ReplProofEnv` is the tactic-level env over the REPL's ``ProofStep`` mode: the theorem is
opened with ``:= by sorry`` and tactics run on the sorry's proof state.

Nothing here imports ``lean_interact`` at module import time.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prover.audit import LeanMessage, LeanResponse
from prover.envbase import ReplayingEnv, Step
from prover.lean_text import drop_proof_marker
from prover.types import (
    LeanCrash,
    LeanTimeout,
    LeanVersion,
    ProofTask,
    ProverInfraError,
    TacticStatus,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplConfig:
    """Settings of the REPL pool.

    Attributes:
        project_dir: Lean project with Mathlib (``lake-manifest.json``); None reads
            ``$VERIMATH_LEAN_PROJECT``.
        workers: REPL processes (each needs several GB of memory with Mathlib imported).
        timeout_s: wall-clock limit of one check or tactic, in seconds.
        header_timeout_s: limit for elaborating a header (``import Mathlib``), in seconds.
        memory_mb: hard address-space cap of each REPL process, in MiB.
        max_uses: checks a worker serves before it is replaced.
        lake_path: the ``lake`` executable.
    """

    project_dir: str | None = None
    workers: int = 2
    timeout_s: float = 120.0
    header_timeout_s: float = 900.0
    memory_mb: int = 16384
    max_uses: int = 200
    lake_path: str = "lake"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: need at least 1 REPL process")
        if self.timeout_s <= 0 or self.header_timeout_s <= 0:
            raise ValueError("timeout_s and header_timeout_s must be > 0 seconds")
        if self.memory_mb < 512:
            raise ValueError(f"memory_mb={self.memory_mb}: Lean with Mathlib needs >= 512 MiB "
                             "(8192+ recommended)")
        if self.max_uses < 1:
            raise ValueError(f"max_uses={self.max_uses}: must be >= 1")


class ServerLike(Protocol):
    """The part of ``lean_interact.LeanServer`` the pool uses."""

    def run(self, request: Any, *, timeout: float | None = None) -> Any:
        """Send a request; return a response model or ``lean_interact`` ``LeanError``."""
        ...

    def kill(self) -> None:
        """Kill the process tree."""
        ...

    def is_alive(self) -> bool:
        """Whether the process is running."""
        ...


def to_lean_response(resp: Any, elapsed_s: float = 0.0) -> LeanResponse:
    """Convert a ``lean_interact`` ``CommandResponse`` / ``ProofStepResponse``.

    Raises:
        LeanCrash: ``resp`` is a ``lean_interact`` ``LeanError`` (the REPL itself failed, e.g.
            an unknown environment id) or not a response at all.
    """
    if not hasattr(resp, "messages"):
        raise LeanCrash(f"REPL error: {getattr(resp, 'message', resp)!r}")
    msgs = tuple(
        LeanMessage(m.severity, m.data, m.start_pos.line if m.start_pos else 0,
                    m.start_pos.column if m.start_pos else 0)
        for m in resp.messages
    )
    return LeanResponse(msgs, tuple(s.goal for s in resp.sorries), elapsed_s)


class ReplWorker:
    """One REPL process and the header environments it holds."""

    def __init__(self, server: ServerLike, header_timeout_s: float) -> None:
        self.server = server
        self.header_timeout_s = header_timeout_s
        self.uses = 0
        self.envs: dict[tuple[str, ...], int | None] = {(): None}

    def request(self, request: Any, timeout_s: float | None) -> Any:
        """Send one request; map ``lean_interact``'s exceptions to ours.

        Raises:
            LeanTimeout: no answer in time (lean_interact has killed the process).
            LeanCrash: process gone, broken pipe, unreadable output, out of memory.
        """
        try:
            return self.server.run(request, timeout=timeout_s)
        except TimeoutError as e:
            raise LeanTimeout(str(e) or f"no answer in {timeout_s}s") from e
        except (ConnectionError, ChildProcessError, OSError, MemoryError,
                json.JSONDecodeError, ValueError) as e:
            raise LeanCrash(f"{type(e).__name__}: {e}") from e

    def env_for(self, *parts: str) -> int | None:
        """Environment id after elaborating ``parts`` in order (e.g. header, then setup).

        Each prefix is elaborated once per process and remembered, so ``import Mathlib`` is
        paid once; empty parts are skipped. None means a fresh environment (no header).

        Raises:
            ProverInfraError: a part does not elaborate (a bad task or project).
        """
        from lean_interact import Command

        key: tuple[str, ...] = ()
        for part in (p for p in parts if p.strip()):
            parent, key = self.envs[key], (*key, part)
            if key in self.envs:
                continue
            resp = self.request(Command(cmd=part, env=parent), self.header_timeout_s)
            lr = to_lean_response(resp)
            if lr.errors:
                what = "the header" if len(key) == 1 else "the statement"
                raise ProverInfraError(f"{what} does not elaborate: {lr.errors[0][:300]}")
            self.envs[key] = resp.env
        return self.envs[key]

    def kill(self) -> None:
        """Kill the process (never raises)."""
        try:
            self.server.kill()
        except Exception as e:  # noqa: BLE001 - best effort on a dying process
            log.debug("kill failed: %s", e)


@dataclass
class PoolStats:
    """Counters for observability and tests."""

    started: int = 0
    retired_uses: int = 0
    retired_timeout: int = 0
    retired_crash: int = 0


class ReplPool:
    """A pool of REPL workers; implements :class:`prover.checker.LeanRunner`.

    Args:
        config: pool settings.
        lean: toolchain / Mathlib revision to record (from :func:`prover.toolchain.read_project`).
        server_factory: builds one server; default starts a ``lean_interact.LeanServer`` for
            ``config.project_dir``. Tests pass a fake shaped like ``LeanServer``.
    """

    def __init__(self, config: ReplConfig, lean: LeanVersion,
                 server_factory: Callable[[], ServerLike] | None = None) -> None:
        self.config = config
        self._lean = lean
        self._factory = server_factory
        self._idle: queue.LifoQueue[ReplWorker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(config.workers)
        self._lock = threading.Lock()
        self.stats = PoolStats()

    @property
    def lean(self) -> LeanVersion:
        """What verdicts are checked with."""
        return self._lean

    @property
    def parallelism(self) -> int:
        """Number of workers."""
        return self.config.workers

    def _default_factory(self) -> Callable[[], ServerLike]:
        from lean_interact import LeanREPLConfig, LeanServer, LocalProject

        from prover.toolchain import require_lean

        project = require_lean(self.config.project_dir, lake_path=self.config.lake_path)
        repl_config = LeanREPLConfig(
            project=LocalProject(directory=str(project.path), auto_build=False,
                                 lake_path=self.config.lake_path),
            memory_hard_limit_mb=self.config.memory_mb, lake_path=self.config.lake_path)
        return lambda: LeanServer(repl_config)

    def _new_worker(self) -> ReplWorker:
        with self._lock:
            if self._factory is None:
                self._factory = self._default_factory()
            factory = self._factory
        try:
            server = factory()
        except Exception as e:
            raise LeanCrash(f"could not start a Lean REPL: {type(e).__name__}: {e}") from e
        self.stats.started += 1
        return ReplWorker(server, self.config.header_timeout_s)

    def acquire(self) -> ReplWorker:
        """Take an idle worker (or start one); blocks while all are busy."""
        self._slots.acquire()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._new_worker()
        except BaseException:
            self._slots.release()
            raise

    def release(self, worker: ReplWorker, *, failure: str | None = None) -> None:
        """Return ``worker`` to the pool, or kill it.

        It is killed instead when ``failure`` is set (``"timeout"`` or ``"crash"``) or when it
        has served ``max_uses`` checks.
        """
        if failure == "timeout":
            self.stats.retired_timeout += 1
        elif failure is not None:
            self.stats.retired_crash += 1
        elif worker.uses >= self.config.max_uses:
            self.stats.retired_uses += 1
            failure = "uses"
        if failure is None and worker.server.is_alive():
            self._idle.put(worker)
        else:
            worker.kill()
        self._slots.release()

    def run(self, code: str, header: str, timeout_s: float | None = None,
            setup: str = "") -> LeanResponse:
        """Run ``code`` after ``header`` and ``setup`` on some worker (``LeanRunner.run``)."""
        from lean_interact import Command

        worker = self.acquire()
        failure: str | None = None
        try:
            env = worker.env_for(header, setup)
            t0 = time.monotonic()
            resp = worker.request(Command(cmd=code, env=env), timeout_s or self.config.timeout_s)
            worker.uses += 1
            return to_lean_response(resp, time.monotonic() - t0)
        except LeanTimeout:
            failure = "timeout"
            raise
        except LeanCrash:
            failure = "crash"
            raise
        finally:
            self.release(worker, failure=failure)

    def close(self) -> None:
        """Kill every idle worker (busy ones are killed when released)."""
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


class ReplProofEnv(ReplayingEnv):
    """:class:`prover.types.ProofEnv` over the REPL's proof-state mode.

    The theorem is opened as ``<statement> := by sorry``; tactics are ``ProofStep`` requests on
    the sorry's proof state. The env holds one worker of ``pool`` while a theorem is open.
    """

    def __init__(self, pool: ReplPool, *, timeout_s: float | None = None,
                 max_restarts: int = 3) -> None:
        super().__init__(max_restarts=max_restarts)
        self.pool = pool
        self.timeout_s = timeout_s or pool.config.timeout_s
        self._worker: ReplWorker | None = None
        self._failure: str | None = None

    def _open(self, task: ProofTask) -> tuple[Any, str, int]:
        from lean_interact import Command

        self._worker = self.pool.acquire()
        self._failure = None
        env = self._worker.env_for(task.header)
        code = drop_proof_marker(task.formal_statement) + " := by\n  sorry\n"
        resp = self._call(Command(cmd=code, env=env))
        lr = to_lean_response(resp)
        if lr.errors or not resp.sorries:
            raise ProverInfraError(f"the statement does not elaborate: {(lr.errors or ['?'])[0]}")
        goal = resp.sorries[0].goal
        return resp.sorries[0].proof_state, goal, max(goal.count("⊢"), 1)

    def _call(self, request: Any) -> Any:
        assert self._worker is not None
        try:
            return self._worker.request(request, self.timeout_s)
        except LeanTimeout:
            self._failure = "timeout"
            raise
        except LeanCrash:
            self._failure = "crash"
            raise

    def _step(self, handle: Any, tactic: str) -> Step:
        from lean_interact import ProofStep

        resp = self._call(ProofStep(proof_state=handle, tactic=tactic))
        if not hasattr(resp, "proof_status"):
            return TacticStatus.ERROR, None, "", 0, str(getattr(resp, "message", resp))
        errors = [m.data for m in resp.messages if m.severity == "error"]
        if errors:
            return TacticStatus.ERROR, None, "", 0, errors[0]
        status = str(resp.proof_status)
        if status == "Completed" and not resp.goals:
            return TacticStatus.PROVED, resp.proof_state, "", 0, ""
        if "sorry" in status or resp.sorries:
            return TacticStatus.GIVEN_UP, None, "", 0, status
        if not resp.goals:
            return TacticStatus.ERROR, None, "", 0, f"no goals but proof status {status!r}"
        return (TacticStatus.OPEN, resp.proof_state, "\n\n".join(resp.goals), len(resp.goals),
                "")

    def _shutdown(self) -> None:
        if self._worker is not None:
            self.pool.release(self._worker, failure=self._failure)
            self._worker = None
