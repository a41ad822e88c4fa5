"""Results of sandboxed executions (DESIGN.md house style 1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SandboxError(RuntimeError):
    """The sandbox itself is broken (cannot start, closed, misconfigured)."""


class ExecStatus(StrEnum):
    """Outcome of one execution.

    ``SANDBOX_ERROR`` is an infrastructure failure, never the program's fault; everything
    else describes what the program did.
    """

    OK = "ok"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    OUTPUT_LIMIT = "output_limit"
    SIGNALED = "signaled"
    REJECTED = "rejected"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What one execution did.

    Attributes:
        status: the outcome.
        stdout: what the program printed (decoded as UTF-8, invalid bytes replaced), at most
            ``max_output_bytes`` together with stderr.
        stderr: its stderr (tracebacks), followed by ``[sandbox] ...`` notes (kill reason,
            truncation, session restarts).
        exit_code: the process exit status; negative for a signal (``-9``), like
            ``subprocess``; None when the program did not run (REJECTED, SANDBOX_ERROR).
        wall_time_s: wall-clock seconds from hand-over to exit, measured by the fork server.
        cpu_time_s: user + system CPU seconds of the program and its reaped children.
        isolation: what was in force, e.g. ``"bwrap+uid+rlimits+seccomp"`` or
            ``"rlimits+uid+pgroup+seccomp"``.
        restarted: sessions only: True when this cell ran in a *replacement* interpreter
            because the previous one was lost for a reason outside the program (it died
            between cells, the sandbox lost it, or the fork server was killed or restarted):
            the cell did not see the session's earlier state through no fault of the program,
            so callers count it as an infrastructure failure (see :meth:`infra_failure`),
            whatever ``status`` says. ``status`` is still what the cell did in the new
            interpreter (e.g. RUNTIME_ERROR for a ``NameError`` on a variable that is gone).
            False after the program ended its own interpreter (a timeout, a crash,
            ``os._exit``: the earlier cell's status already says so, and the restart note in
            stderr tells the model), for one-shot runs and for the first cell of a session.
    """

    status: ExecStatus
    stdout: str
    stderr: str
    exit_code: int | None
    wall_time_s: float
    cpu_time_s: float
    isolation: str
    restarted: bool = False

    @property
    def ok(self) -> bool:
        """True for status OK."""
        return self.status is ExecStatus.OK

    @property
    def infra_failure(self) -> bool:
        """True for SANDBOX_ERROR or a cell whose interpreter was lost outside the program."""
        return self.status is ExecStatus.SANDBOX_ERROR or self.restarted

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``verimath exec``."""
        return {
            "status": str(self.status),
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "wall_time_s": self.wall_time_s,
            "cpu_time_s": self.cpu_time_s,
            "isolation": self.isolation,
            "restarted": self.restarted,
        }


def failed(status: ExecStatus, reason: str, isolation: str) -> ExecResult:
    """A result for a program that did not run (REJECTED or SANDBOX_ERROR)."""
    return ExecResult(status, "", f"[sandbox] {reason}\n", None, 0.0, 0.0, isolation)


def check_code(code: object, max_code_bytes: int) -> str | None:
    """Why ``code`` must be REJECTED, or None when it may run.

    Raises:
        TypeError: ``code`` is not a str (a caller bug, not a program's fault).
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be str, got {type(code).__name__}")
    if "\x00" in code:
        return f"rejected: code contains a NUL byte at index {code.index(chr(0))}"
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError as e:
        return f"rejected: code is not valid Unicode text (lone surrogate at index {e.start})"
    if size > max_code_bytes:
        return f"rejected: code is {size} bytes; the limit is {max_code_bytes}"
    return None
