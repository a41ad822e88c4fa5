"""Sandboxed Python execution for program-of-thought and tool-integrated reasoning.

``Sandbox`` runs untrusted programs one-shot (:meth:`Sandbox.run`, :meth:`Sandbox.run_many`) or
as notebook-like sessions (:meth:`Sandbox.session`). Every result is an :class:`ExecResult`
that records the isolation in force.

How (see ``isolation.py`` and ``server.py``): a fork server inside bubblewrap (no network, own
PID/IPC/UTS namespaces, read-only system, size-capped tmpfs) imports ``numpy``/``sympy`` once,
pre-forks one child per worker, and per execution hands a child the code. The child runs in its
own session, under its own unprivileged uid (when root), with rlimits (address space, CPU,
file size, open files, processes), ``no_new_privs``, a seccomp filter (no new namespaces, bpf,
perf, userfaultfd, key rings, io_uring), stdin=/dev/null and capped stdout/stderr pipes. A
wall-clock timer kills the execution's whole uid; leftovers (daemons, zombies, files, SysV IPC)
are removed before the uid is reused. The interpreter, its prefix and venv are bound
read-only *after* the sandbox's own scratch mounts, so an install under ``/tmp`` or
``/dev/shm`` is not hidden. Without bubblewrap (e.g. Docker's default seccomp) the sandbox
refuses to start unless the config allows the fallback (``allow_fallback: true`` or
``$VERIMATH_SANDBOX_ALLOW_FALLBACK=1``): rlimits + uid + process groups + the seccomp filter
(which then also denies sockets), said in ``isolation`` and logged as a warning.

Session cells report ``restarted=True`` when they ran in a replacement interpreter (the
previous one was lost): an infrastructure failure for callers (``ExecResult.infra_failure``).

Statuses: ``OK`` (exit 0, including ``sys.exit(0)``), ``RUNTIME_ERROR`` (non-zero exit, e.g. an
uncaught exception with its traceback in stderr, ``sys.exit(3)``), ``TIMEOUT`` (wall-clock or
CPU limit), ``MEMORY`` (``MemoryError`` under the address-space limit), ``OUTPUT_LIMIT``
(output truncated, or killed for writing more than ``kill_output_bytes``), ``SIGNALED``
(killed by a signal it did not get from us, e.g. SIGSEGV), ``REJECTED`` (never ran: too long,
NUL bytes, lone surrogates), ``SANDBOX_ERROR`` (infrastructure failure; never the program's
fault). Precedence: TIMEOUT > MEMORY > OUTPUT_LIMIT (killed) > SIGNALED > OUTPUT_LIMIT
(truncated) > RUNTIME_ERROR / OK.
"""

from verimath.reasoning.sandbox.config import SandboxConfig
from verimath.reasoning.sandbox.pool import Sandbox
from verimath.reasoning.sandbox.result import ExecResult, ExecStatus, SandboxError
from verimath.reasoning.sandbox.session import SandboxSession

__all__ = [
    "ExecResult",
    "ExecStatus",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxSession",
]
