"""Configuration of the sandboxed Python executor."""

from __future__ import annotations

import os
from dataclasses import dataclass

FALLBACK_ENV = "VERIMATH_SANDBOX_ALLOW_FALLBACK"
ISOLATION_MODES = ("auto", "bwrap", "rlimits")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and pool settings of a :class:`~verimath.reasoning.sandbox.Sandbox`.

    Attributes:
        timeout_s: wall-clock limit per execution (per cell in a session), seconds. The CPU
            rlimit is ``ceil(timeout_s) + 1`` seconds.
        memory_mb: address space the program may allocate on top of the pre-warmed interpreter
            (``RLIMIT_AS`` = the interpreter's size at fork + ``memory_mb`` MiB).
        max_output_bytes: stdout + stderr kept per execution; the rest is counted and dropped,
            and the status becomes ``OUTPUT_LIMIT``.
        kill_output_bytes: a program that writes more than this (stdout + stderr) is killed
            (status ``OUTPUT_LIMIT``).
        max_code_bytes: longer programs (UTF-8 bytes) are ``REJECTED`` without running.
        workers: executions run concurrently (one-shot runs; sessions are extra).
        preload: modules imported (and warmed up) once in the fork server.
        isolation: ``"auto"`` (bubblewrap; the rlimits fallback only with ``allow_fallback``),
            ``"bwrap"`` (fail if unavailable) or ``"rlimits"`` (force the fallback).
        allow_fallback: with ``isolation="auto"``, start the weaker rlimits fallback (logged as
            a warning, recorded in every result's ``isolation``) when bubblewrap cannot start.
            False: that is a :class:`~verimath.reasoning.sandbox.SandboxError`, so a sandbox never
            degrades silently (issue 11). None (default): ``$VERIMATH_SANDBOX_ALLOW_FALLBACK``
            (``1``/``true``) decides, else False; for machines where bubblewrap cannot work
            (e.g. Docker's default seccomp profile).
        tmpfs_mb: size cap of the sandbox's ``/tmp`` (bubblewrap mode; shared by the executions
            of one Sandbox, each in its own private directory).
        shm_mb: size cap of the sandbox's ``/dev/shm`` (bubblewrap mode).
        file_size_mb: ``RLIMIT_FSIZE``: largest file a program may write.
        max_open_files: ``RLIMIT_NOFILE``.
        max_processes: ``RLIMIT_NPROC`` per execution (processes + threads of its private uid).
        session_cpu_s: CPU-seconds rlimit of a whole session interpreter.
        warmup: run a small sympy/numpy workload in the fork server so that lazy
            initialisation is not paid per execution.
        python: interpreter to run (default: the current one); its prefix and venv are
            mounted read-only.
        startup_timeout_s: how long the fork server may take to start.
        native_forker: fork executions from a small C loop (``forker.c``, compiled once with
            the system C compiler and cached); False, or no compiler, uses the Python loop.
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_output_bytes: int = 65536
    max_code_bytes: int = 100_000
    workers: int = 2
    preload: tuple[str, ...] = ("numpy", "sympy")
    isolation: str = "auto"
    kill_output_bytes: int = 8 << 20
    tmpfs_mb: int = 512
    shm_mb: int = 64
    file_size_mb: int = 64
    max_open_files: int = 256
    max_processes: int = 64
    session_cpu_s: float = 600.0
    warmup: bool = True
    python: str | None = None
    startup_timeout_s: float = 60.0
    native_forker: bool = True
    allow_fallback: bool | None = None

    @property
    def fallback_allowed(self) -> bool:
        """``allow_fallback``, with None resolved from ``$VERIMATH_SANDBOX_ALLOW_FALLBACK``."""
        if self.allow_fallback is None:
            return os.environ.get(FALLBACK_ENV, "").strip().lower() in ("1", "true", "yes")
        return bool(self.allow_fallback)

    def call_budget_s(self) -> float:
        """Upper bound (s) of one run's wall time: its limit, the watchdog's grace, a start-up.

        A caller's own deadline for one :meth:`Sandbox.run` (e.g. a reward's safety net) should
        not be shorter: below it, the caller and not the sandbox would decide the run.
        """
        from verimath.reasoning.sandbox.pool import WATCHDOG_GRACE_S

        return self.timeout_s + WATCHDOG_GRACE_S + self.startup_timeout_s

    def __post_init__(self) -> None:
        for name in ("timeout_s", "session_cpu_s", "startup_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")
        for name in ("memory_mb", "max_output_bytes", "max_code_bytes", "workers", "tmpfs_mb",
                     "shm_mb", "file_size_mb", "kill_output_bytes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.kill_output_bytes < self.max_output_bytes:
            raise ValueError("kill_output_bytes must be >= max_output_bytes")
        if self.max_open_files < 16:
            raise ValueError(f"max_open_files must be >= 16, got {self.max_open_files}")
        if self.max_processes < 2:
            raise ValueError(f"max_processes must be >= 2, got {self.max_processes}")
        if self.workers > 256:
            raise ValueError(f"workers must be <= 256, got {self.workers}")
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")
        if self.allow_fallback not in (None, True, False):
            raise ValueError(f"allow_fallback must be true or false, got {self.allow_fallback!r}")
        if isinstance(self.preload, str) or not all(isinstance(m, str) for m in self.preload):
            raise ValueError("preload must be a tuple of module names, e.g. ('numpy', 'sympy')")
