"""The Lean REPL backend (``lean-interact``): a pool of REPL processes and a REPL ``ProofEnv``.

:class:`ReplPool` runs whole-proof checks (it is the :class:`verimath.prover.checker.LeanRunner` of
the real checker). Each worker is one ``lean_interact.LeanServer`` (one ``repl`` process under
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

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from verimath.prover.envbase import ReplayingEnv, Step
from verimath.prover.lean_text import drop_proof_marker
from verimath.prover.responses import LeanResponse, classify_step, to_lean_response
from verimath.prover.types import (
    LeanCrash,
    LeanStarved,
    LeanTimeout,
    LeanUnavailable,
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
        timeout_s: wall-clock limit of one check or tactic, in seconds. A check or tactic that
            reaches it having used at least ``judged_cpu_fraction`` of it in CPU time (the REPL
            process tree's) ran Lean out of its limits itself: a failed proof / expansion. One
            that used less was starved by a loaded machine: a whole-proof check is re-checked
            with a CPU-time limit of ``timeout_s`` (judged) and a wall cap of
            ``retry_wall_factor * timeout_s`` (past it: could not judge, :class:`LeanStarved`),
            and so is a tactic (after a replay on a fresh process; past the cap it is a crashed,
            infrastructure step). Where the process cannot be measured (no local process), a
            timeout is a failed proof as before.
        header_timeout_s: limit for elaborating a header (``import Mathlib``), in seconds.
        memory_mb: hard address-space cap of each REPL process, in MiB.
        max_uses: checks a worker serves before it is replaced; each tactic step counts as
            one use too.
        max_proof_states: proof states a worker may hold (every ``ProofStep`` answer and
            every sorry creates one, and the REPL never frees them) before it is replaced.
        judged_cpu_fraction: see ``timeout_s``; the default leaves room for the 0.1 s sampling
            of the CPU meter (0 judges every timeout at once, as before).
        retry_wall_factor: wall cap of the CPU-timed re-check, as a multiple of ``timeout_s``.
        lake_path: the ``lake`` executable.
        local_repl_path: a prebuilt REPL checkout (``lake build`` done) to use instead of the
            one ``lean_interact`` clones and builds into its cache; None uses that cache,
            which must already be built (``verimath doctor --fix`` builds it).
    """

    project_dir: str | None = None
    workers: int = 2
    timeout_s: float = 120.0
    header_timeout_s: float = 900.0
    memory_mb: int = 16384
    max_uses: int = 200
    max_proof_states: int = 2000
    judged_cpu_fraction: float = 0.95
    retry_wall_factor: float = 4.0
    lake_path: str = "lake"
    local_repl_path: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: need at least 1 REPL process")
        if self.timeout_s <= 0 or self.header_timeout_s <= 0:
            raise ValueError("timeout_s and header_timeout_s must be > 0 seconds")
        if self.memory_mb < 512:
            raise ValueError(f"memory_mb={self.memory_mb}: Lean with Mathlib needs >= 512 MiB "
                             "(8192+ recommended)")
        if not 0 <= self.judged_cpu_fraction <= 1 or self.retry_wall_factor < 1:
            raise ValueError(f"judged_cpu_fraction={self.judged_cpu_fraction} must be in [0, 1] "
                             f"and retry_wall_factor={self.retry_wall_factor} >= 1")
        if self.max_uses < 1 or self.max_proof_states < 1:
            raise ValueError(f"max_uses={self.max_uses}, max_proof_states="
                             f"{self.max_proof_states}: both must be >= 1")


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


def _cpu_s(procs: list[Any]) -> float | None:
    """CPU seconds (user + system) of the live processes in ``procs``; None: all gone."""
    import psutil

    total, alive = 0.0, False
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total, alive = total + t.user + t.system, True
    return total if alive else None


class _Sampler:
    """One daemon thread that samples every running :class:`Measurement` each ``period_s``."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._active: set[Measurement] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, m: Measurement) -> None:
        with self._lock:
            self._active.add(m)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="lean-cpu-sampler")
                self._thread.start()

    def discard(self, m: Measurement) -> None:
        with self._lock:
            self._active.discard(m)

    def _run(self) -> None:
        while True:
            time.sleep(self.period_s)
            with self._lock:
                active = list(self._active)
            for m in active:
                try:
                    m.sample()
                except Exception as e:  # noqa: BLE001 - never let one meter stop the sampler
                    log.warning("lean CPU sampling failed: %s", e)


#: the one sampler of this process (its thread starts with the first measured request)
_SAMPLER = _Sampler(period_s=0.1)


class Measurement:
    """CPU time one request's process tree spends (see :class:`CpuMeter`).

    Attributes:
        cpu_limit_s: the processes are killed past this many CPU seconds (None: never).
        hit_limit: they were (the request's failure is then its own CPU limit).
    """

    def __init__(self, meter: CpuMeter, cpu_limit_s: float | None) -> None:
        self.meter, self.cpu_limit_s = meter, cpu_limit_s
        self.hit_limit = False
        self.done = False  # the request has returned: nothing to sample or kill any more
        self._base = _cpu_s(meter.procs)
        self._last = self._base

    def sample(self) -> None:
        """Read the tree's CPU time now; kill it when the request has used its limit."""
        if self.done or self._last is None:
            return
        now = _cpu_s(self.meter.procs)
        if now is None:
            return
        # never lower: lean_interact kills the REPL (a child of ``lake env``) before lake
        self._last = max(self._last, now)
        used = self.used_s
        if self.cpu_limit_s is not None and used is not None and used >= self.cpu_limit_s \
                and not self.hit_limit:
            self.hit_limit = True
            self.meter.kill()

    @property
    def used_s(self) -> float | None:
        """CPU seconds used since the request started (the last sample); None: unmeasured."""
        if self._base is None or self._last is None:
            return None
        return max(0.0, self._last - self._base)


class CpuMeter:
    """CPU time a REPL server's process tree spends per request, sampled every 0.1 s.

    The tree (``lake env`` and the ``repl`` it starts) is read once, when the meter is made;
    one sampler thread for the whole process reads the running requests' CPU times, so a
    request pays two ``/proc`` reads, not a thread (``python benchmarks/lean_cpu_meter.py``).
    ``lean_interact`` kills the process the moment a request times out, so the largest sample
    (at most one period old) is what the request got. With a CPU limit the meter kills the
    processes once the request has used that much CPU: the processes only (``psutil``, which
    refuses a reused pid), leaving the server object to the thread that sent the request, which
    then reads end-of-file and cleans up as for any dead process (``lean_interact.LeanServer.
    kill`` is not thread-safe).

    Args:
        server: a ``lean_interact.LeanServer`` (its ``_proc`` is read: ``lean_interact`` has
            no public accessor for the process) or a double without one (nothing measured:
            ``used_s`` is None).
    """

    def __init__(self, server: Any) -> None:
        import psutil

        pid = getattr(getattr(server, "_proc", None), "pid", None)
        self.procs: list[Any] = []
        if isinstance(pid, int):
            try:
                root = psutil.Process(pid)
                self.procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                self.procs = []

    @contextlib.contextmanager
    def measure(self, cpu_limit_s: float | None = None) -> Iterator[Measurement]:
        """Measure (and with ``cpu_limit_s``, limit) the CPU time of one request."""
        m = Measurement(self, cpu_limit_s)
        if not self.procs:
            yield m
            return
        _SAMPLER.add(m)
        try:
            yield m
        finally:
            m.done = True
            _SAMPLER.discard(m)

    def kill(self) -> None:
        """SIGKILL the tree, children first (processes already gone are skipped)."""
        import psutil

        for p in reversed(self.procs):
            try:
                p.kill()
            except psutil.Error:
                pass


class ReplWorker:
    """One REPL process and the header environments it holds."""

    def __init__(self, server: ServerLike, header_timeout_s: float) -> None:
        self.server = server
        self.header_timeout_s = header_timeout_s
        self.uses = 0
        self.proof_states = 0
        self.envs: dict[tuple[str, ...], int | None] = {(): None}
        self.meter: CpuMeter | None = None  # made at the first request (the process is up)

    def request(self, request: Any, timeout_s: float | None,
                cpu_limit_s: float | None = None) -> Any:
        """Send one request; map ``lean_interact``'s exceptions to ours.

        Args:
            request: a ``lean_interact`` request.
            timeout_s: wall-clock limit, seconds (None: none).
            cpu_limit_s: CPU-time limit of the process tree, seconds (None: none).

        Raises:
            LeanTimeout: no answer in time (lean_interact has killed the process), or the
                request used ``cpu_limit_s``; ``cpu_s`` / ``wall_s`` say what it used.
            LeanCrash: process gone, broken pipe, unreadable output, out of memory.
        """
        t0 = time.monotonic()
        if self.meter is None:
            self.meter = CpuMeter(self.server)
        with self.meter.measure(cpu_limit_s) as meter:
            try:
                return self.server.run(request, timeout=timeout_s)
            except Exception as e:
                if meter.hit_limit:  # whatever the dead process made the client raise
                    raise LeanTimeout(f"used its {cpu_limit_s:g} s of CPU time",
                                      cpu_s=meter.used_s, wall_s=time.monotonic() - t0) from e
                if isinstance(e, TimeoutError):
                    raise LeanTimeout(str(e) or f"no answer in {timeout_s}s",
                                      cpu_s=meter.used_s, wall_s=time.monotonic() - t0) from e
                if isinstance(e, (ConnectionError, ChildProcessError, OSError, MemoryError,
                                  json.JSONDecodeError, ValueError)):
                    raise LeanCrash(f"{type(e).__name__}: {e}") from e
                raise

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
    retired_states: int = 0
    killed_at_close: int = 0
    rechecked: int = 0  # checks re-run CPU-timed after a starved timeout
    starved: int = 0  # checks / tactics left unjudged: the machine was too loaded


def repl_config(config: ReplConfig, *, build: bool = False) -> Any:
    """The ``lean_interact.LeanREPLConfig`` for ``config`` (the preflight and the fix).

    With ``build=False`` nothing is cloned or built: the REPL must be prebuilt, either at
    ``config.local_repl_path`` or in ``lean_interact``'s cache. ``build=True`` (``verimath
    doctor --fix``) clones and builds it under ``lean_interact``'s file lock.

    Raises:
        LeanUnavailable: no Lean project, no prebuilt REPL, or the setup failed; the message
            names the cause and the fix.
    """
    from verimath.prover.toolchain import DOCTOR_HINT, lean_interact_cache_dir, require_lean

    project = require_lean(config.project_dir, lake_path=config.lake_path)
    cache = lean_interact_cache_dir()
    if not build and config.local_repl_path is None and not (
            cache and any(cache.glob("*/repl_*/.lake/build/bin/repl"))):
        raise LeanUnavailable(f"the Lean REPL is not built (no prebuilt `local_repl_path` and "
                              f"no built REPL in {cache}); run `verimath doctor --fix`")
    try:
        from lean_interact import LeanREPLConfig, LocalProject

        kw: dict[str, Any] = {}
        if config.local_repl_path is not None:
            kw = {"local_repl_path": config.local_repl_path, "build_repl": build}
        elif not build:
            kw = {"build_repl": False}
        cfg = LeanREPLConfig(
            project=LocalProject(directory=str(project.path), auto_build=False,
                                 lake_path=config.lake_path),
            memory_hard_limit_mb=config.memory_mb, lake_path=config.lake_path, **kw)
    except Exception as e:  # noqa: BLE001 - every setup failure becomes one clear error
        raise LeanUnavailable(f"the Lean REPL could not be set up ({type(e).__name__}: {e}); "
                              f"run `verimath doctor --fix` to build it; {DOCTOR_HINT}") from e
    if not build and not cfg.is_setup():
        raise LeanUnavailable("the Lean REPL is not built (no prebuilt `local_repl_path` and "
                              "an empty lean_interact cache); run `verimath doctor --fix`")
    return cfg


class ReplPool:
    """A pool of REPL workers; implements :class:`verimath.prover.checker.LeanRunner`.

    Args:
        config: pool settings.
        lean: toolchain / Mathlib revision to record (from
        :func:`verimath.prover.toolchain.read_project`).
        server_factory: builds one server; default starts a ``lean_interact.LeanServer`` for
            ``config.project_dir`` (see :meth:`preflight`). Tests pass a fake shaped like
            ``LeanServer``.
    """

    def __init__(self, config: ReplConfig, lean: LeanVersion,
                 server_factory: Callable[[], ServerLike] | None = None) -> None:
        self.config = config
        self._lean = lean
        self._factory = server_factory
        self._idle: queue.LifoQueue[ReplWorker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(config.workers)
        self._lock = threading.Lock()
        self._live: set[ReplWorker] = set()
        self._closed = False
        self.stats = PoolStats()

    @property
    def lean(self) -> LeanVersion:
        """What verdicts are checked with."""
        return self._lean

    @property
    def parallelism(self) -> int:
        """Number of workers."""
        return self.config.workers

    def preflight(self) -> None:
        """Resolve the REPL setup now (no clone, no build), so no check pays for it.

        Raises:
            LeanUnavailable: see :func:`repl_config`.
        """
        with self._lock:
            if self._factory is None:
                from lean_interact import LeanServer

                cfg = repl_config(self.config)
                self._factory = lambda: LeanServer(cfg)

    def _new_worker(self) -> ReplWorker:
        self.preflight()
        assert self._factory is not None
        try:
            server = self._factory()
        except Exception as e:
            raise LeanCrash(f"could not start a Lean REPL: {type(e).__name__}: {e}") from e
        self.stats.started += 1
        return ReplWorker(server, self.config.header_timeout_s)

    def acquire(self) -> ReplWorker:
        """Take an idle worker (or start one); blocks while all are busy.

        Raises:
            ProverInfraError: the pool is closed.
            LeanUnavailable: the REPL is not set up (see :meth:`preflight`).
            LeanCrash: a REPL process could not be started.
        """
        if self._closed:
            raise ProverInfraError("the Lean REPL pool is closed")
        self._slots.acquire()
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            try:
                worker = self._new_worker()
            except BaseException:
                self._slots.release()
                raise
        with self._lock:
            self._live.add(worker)
        return worker

    def worn_out(self, worker: ReplWorker) -> str | None:
        """``"uses"`` / ``"states"`` when ``worker`` is due for replacement, else None."""
        if worker.uses >= self.config.max_uses:
            return "uses"
        if worker.proof_states >= self.config.max_proof_states:
            return "states"
        return None

    def release(self, worker: ReplWorker, *, failure: str | None = None) -> None:
        """Return ``worker`` to the pool, or kill it.

        It is killed instead when ``failure`` is set (``"timeout"`` or ``"crash"``), when it
        has served ``max_uses`` checks / steps or holds ``max_proof_states`` states, or when
        the pool was closed meanwhile.
        """
        if failure == "timeout":
            self.stats.retired_timeout += 1
        elif failure is not None:
            self.stats.retired_crash += 1
        elif (worn := self.worn_out(worker)) is not None:
            if worn == "uses":
                self.stats.retired_uses += 1
            else:
                self.stats.retired_states += 1
            failure = worn
        with self._lock:
            known = worker in self._live
            self._live.discard(worker)
            closed = self._closed
        if failure is None and not closed and worker.server.is_alive():
            self._idle.put(worker)
        else:
            worker.kill()
        if known:
            self._slots.release()

    def run(self, code: str, header: str, timeout_s: float | None = None,
            setup: str = "") -> LeanResponse:
        """Run ``code`` after ``header`` and ``setup`` on some worker (``LeanRunner.run``)."""
        limit = timeout_s or self.config.timeout_s
        for recheck in (False, True):
            wall, cpu = self.try_limits(limit, recheck=recheck)
            try:
                return self._run_once(code, header, setup, wall, cpu)
            except LeanTimeout as e:
                if not self.starved(e, limit, recheck=recheck):
                    raise  # the proof's own: it used its CPU time
                if recheck:
                    raise LeanStarved(f"no answer in {e.wall_s or 0:.0f} s, re-check included, "
                                      f"with only {e.cpu_s or 0:.1f} s of CPU time: the machine "
                                      "was too loaded to decide") from e
                log.warning("lean check starved (%s); re-checking with a %.0f s CPU limit", e,
                            limit)
        raise AssertionError("unreachable: the re-check returns or raises")

    def try_limits(self, limit_s: float, *, recheck: bool) -> tuple[float, float | None]:
        """``(wall_s, cpu_limit_s)`` of one try of a request whose limit is ``limit_s``.

        A first try is wall-clocked at ``limit_s`` (no CPU limit); a re-check after a starved
        timeout gets ``limit_s`` of CPU time under a wall cap of ``retry_wall_factor * limit_s``.
        """
        if recheck:
            return limit_s * self.config.retry_wall_factor, limit_s
        return limit_s, None

    def starved(self, e: LeanTimeout, limit_s: float, *, recheck: bool) -> bool:
        """Whether timeout ``e`` of a try with limit ``limit_s`` was the machine's; counts it.

        A first try was starved when its process tree was measured and used less than
        ``judged_cpu_fraction`` of ``limit_s`` in CPU time (``stats.rechecked``: it runs again,
        CPU-timed); a re-check when it reached its wall cap before ``limit_s`` of CPU time
        (``stats.starved``: could not judge). An unmeasured timeout is never starved: a failed
        proof, as without the meter.
        """
        threshold = limit_s if recheck else self.config.judged_cpu_fraction * limit_s
        if e.cpu_s is None or e.cpu_s >= threshold:
            return False
        if recheck:
            self.stats.starved += 1
        else:
            self.stats.rechecked += 1
        return True

    def _run_once(self, code: str, header: str, setup: str, wall_s: float,
                  cpu_limit_s: float | None) -> LeanResponse:
        from lean_interact import Command

        worker = self.acquire()
        failure: str | None = None
        try:
            env = worker.env_for(header, setup)
            t0 = time.monotonic()
            resp = worker.request(Command(cmd=code, env=env), wall_s, cpu_limit_s)
            worker.uses += 1
            lr = to_lean_response(resp, time.monotonic() - t0)
            worker.proof_states += len(lr.sorry_info)
            return lr
        except LeanTimeout:
            failure = "timeout"
            raise
        except LeanCrash:
            failure = "crash"
            raise
        finally:
            self.release(worker, failure=failure)

    def close(self) -> None:
        """Kill every worker, idle or busy; a busy one's request fails as a crash.

        A worker released after this is killed, and ``acquire`` refuses.
        """
        with self._lock:
            self._closed = True
            busy = list(self._live)
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                break
        for worker in busy:
            self.stats.killed_at_close += 1
            worker.kill()


class ReplProofEnv(ReplayingEnv):
    """:class:`verimath.prover.types.ProofEnv` over the REPL's proof-state mode.

    The theorem is opened as ``<statement> := by sorry``; tactics are ``ProofStep`` requests on
    the sorry's proof state (answers are read by :func:`verimath.prover.responses.classify_step`).
    The env holds one worker of ``pool`` while a theorem is open; each tactic counts as one use
    and one proof state of that worker, and a worn-out worker is replaced between tactics
    (states are replayed on demand, see :class:`verimath.prover.envbase.ReplayingEnv`).
    """

    def __init__(self, pool: ReplPool, *, timeout_s: float | None = None,
                 max_restarts: int = 3) -> None:
        super().__init__(max_restarts=max_restarts)
        self.pool = pool
        self.timeout_s = timeout_s or pool.config.timeout_s
        self._worker: ReplWorker | None = None
        self._failure: str | None = None
        self._cpu_limited = False

    def _open(self, task: ProofTask) -> tuple[Any, str, int]:
        from lean_interact import Command

        self._worker = self.pool.acquire()
        self._failure = None
        env = self._worker.env_for(task.header)
        code = drop_proof_marker(task.formal_statement) + " := by\n  sorry\n"
        lr = to_lean_response(self._call(Command(cmd=code, env=env)))
        self._worker.proof_states += len(lr.sorry_info)
        if lr.errors or not lr.sorry_info or lr.sorry_info[0].proof_state is None:
            raise ProverInfraError(f"the statement does not elaborate: {(lr.errors or ['?'])[0]}")
        goal = lr.sorry_info[0].goal
        return lr.sorry_info[0].proof_state, goal, max(goal.count("⊢"), 1)

    @contextlib.contextmanager
    def _cpu_timed(self) -> Iterator[None]:
        self._cpu_limited = True
        try:
            yield
        finally:
            self._cpu_limited = False

    def _call(self, request: Any) -> Any:
        assert self._worker is not None
        recheck = self._cpu_limited
        wall, cpu = self.pool.try_limits(self.timeout_s, recheck=recheck)
        try:
            return self._worker.request(request, wall, cpu)
        except LeanTimeout as e:
            self._failure = "timeout"
            if self.pool.starved(e, self.timeout_s, recheck=recheck):
                # the machine's, not the tactic's (run_tactic re-runs it CPU-timed once)
                raise LeanStarved(f"{e} after only {e.cpu_s or 0:.1f} s of CPU time") from e
            raise
        except LeanCrash:
            self._failure = "crash"
            raise

    def _should_recycle(self) -> bool:
        return self._worker is not None and self.pool.worn_out(self._worker) is not None

    def _step(self, handle: Any, tactic: str) -> Step:
        from lean_interact import ProofStep

        resp = self._call(ProofStep(proof_state=handle, tactic=tactic))
        assert self._worker is not None
        self._worker.uses += 1
        self._worker.proof_states += 1
        lr = to_lean_response(resp) if hasattr(resp, "messages") else str(resp.message)
        try:
            status, msg = classify_step(lr)
        except LeanCrash:
            self._failure = "crash"  # the process lost the state: replace it
            raise
        assert isinstance(lr, LeanResponse) or status is not TacticStatus.OPEN
        pp = "\n\n".join(lr.goals) if isinstance(lr, LeanResponse) else ""
        n = len(lr.goals) if isinstance(lr, LeanResponse) else 0
        state = lr.proof_state if isinstance(lr, LeanResponse) else None
        return status, state, pp, n, msg

    def _shutdown(self) -> None:
        if self._worker is not None:
            self.pool.release(self._worker, failure=self._failure)
            self._worker = None


def repl_checker(project_dir: str | None, *, workers: int, timeout_s: float) -> Any:
    """The audited whole-proof checker over a Lean REPL pool, or None without a Lean project.

    Args:
        project_dir: a Lean 4 + Mathlib project; None reads ``$VERIMATH_LEAN_PROJECT``
            (:func:`verimath.prover.toolchain.find_project`).
        workers: Lean REPL processes (several GB of memory each).
        timeout_s: seconds one proof check may take (a proof past it is a failed proof).

    Returns:
        A :class:`verimath.prover.checker.LeanChecker` (the caller closes it), or None when no
        Lean project is found (the caller says which setting to give).
    """
    from verimath.prover.checker import LeanChecker
    from verimath.prover.toolchain import find_project

    project = find_project(project_dir)
    if project is None:
        return None
    pool = ReplPool(ReplConfig(project_dir=str(project.path), workers=workers,
                               timeout_s=timeout_s), project.version)
    return LeanChecker(pool, timeout_s=timeout_s)
