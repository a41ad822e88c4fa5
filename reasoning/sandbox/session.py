"""Stateful interpreter sessions (multi-turn tool-integrated reasoning)."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING, Any

from verimath.reasoning.sandbox.result import (
    ExecResult,
    ExecStatus,
    SandboxError,
    check_code,
    failed,
)

if TYPE_CHECKING:
    from verimath.reasoning.sandbox.pool import Sandbox

RESTART_NOTE = ("[sandbox] this cell ran in a fresh interpreter: the previous one ended ({why}); "
                "earlier variables and imports are lost\n")


class _State:
    """What the finalizer needs (must not reference the session itself)."""

    __slots__ = ("sid", "gen")

    def __init__(self) -> None:
        self.sid: int | None = None
        self.gen = -1


def _close_state(sandbox_ref: weakref.ref[Sandbox], state: _State) -> None:
    sb = sandbox_ref()
    if sb is not None and state.sid is not None:
        sb._close_session(state.sid, state.gen)
    state.sid = None


class SandboxSession:
    """One stateful interpreter, like a notebook kernel.

    Every :meth:`run` executes a cell in the same ``__main__`` namespace, in one long-lived
    process with its own uid and rlimits (``memory_mb`` for the whole session, a CPU budget of
    ``config.session_cpu_s``, ``timeout_s`` wall-clock per cell). Output is captured per cell.
    With ``echo`` (default), the value of a final bare expression is printed with
    ``sys.displayhook`` as in the Python REPL (``repr``, skipped when None, stored in ``_``).

    A cell that raises gives ``RUNTIME_ERROR`` (traceback in stderr) and the session goes on;
    ``sys.exit()`` inside a cell only ends that cell. When the interpreter *ends* during a cell
    (timeout, memory kill, crash, ``os._exit``), that cell's result says so, and the next cell
    runs in a fresh interpreter: its result has ``restarted=True`` (an infrastructure failure
    for callers: the cell did not see the earlier state) and :data:`RESTART_NOTE` at the start
    of its stderr. The same holds when the interpreter dies between cells or the fork server
    is killed or restarted.

    Whether a cell raised (and its CPU time) is reported by the interpreter over a private pipe,
    so a program can misreport only its own cell; time limits, crashes and kills are observed
    by the fork server. Sessions are independent (separate processes and uids) and die with
    their owner: :meth:`close`, garbage collection, ``Sandbox.close()`` or the host process's
    exit. Use one session from one thread at a time (calls are serialised).
    """

    def __init__(self, sandbox: Sandbox, *, timeout_s: float, memory_mb: int,
                 echo: bool = True) -> None:
        self._sb = sandbox
        self.timeout_s, self.memory_mb, self.echo = timeout_s, memory_mb, echo
        self._lock = threading.Lock()
        self._closed = False
        self._state = _State()
        self._note = ""
        self._lost = False  # the pending restart note is for a loss outside the program
        self._finalizer = weakref.finalize(self, _close_state, weakref.ref(sandbox), self._state)
        self._open()

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """True while the current interpreter holds state (False after it ended)."""
        return self._state.sid is not None

    def _open(self) -> None:
        sid, gen = self._sb._open_session(self.memory_mb, self.echo)
        self._state.sid, self._state.gen = sid, gen

    def run(self, code: str, *, timeout_s: float | None = None) -> ExecResult:
        """Run one cell; blocks. Returns its :class:`ExecResult`.

        Raises:
            SandboxError: the session or its sandbox is closed, or a new interpreter could not
                be started.
        """
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        if not timeout > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        reason = check_code(code, self._sb.config.max_code_bytes)
        if reason is not None:
            return failed(ExecStatus.REJECTED, reason, self._sb.isolation)
        with self._lock:
            if self._closed:
                raise SandboxError("the session is closed")
            reply: dict[str, Any] = {}
            for _ in range(2):
                if self._state.sid is None:
                    self._open()
                assert self._state.sid is not None
                reply = self._sb._cell(self._state.sid, self._state.gen, code, timeout)
                if not reply.get("dead"):
                    break
                self._state.sid = None  # ended while idle: restart and run the cell there
                self._note = self._note or RESTART_NOTE.format(why="between cells")
                self._lost = True
            else:  # a fresh interpreter was dead on arrival too
                self._note, self._lost = "", False
                return dataclasses.replace(failed(
                    ExecStatus.SANDBOX_ERROR, "the session's interpreter could not be restarted",
                    self._sb.isolation), restarted=True)
            res = self._sb._to_result(reply)
            note, lost, self._note, self._lost = self._note, self._lost, "", False
            if note:
                res = dataclasses.replace(res, stderr=note + res.stderr, restarted=lost)
            if reply.get("ended"):  # the cell ended its own interpreter (timeout, crash, exit)
                self._state.sid = None
                self._note, self._lost = RESTART_NOTE.format(why=str(res.status)), False
            elif reply.get("op") == "lost":  # the sandbox lost it: not the program's doing
                self._state.sid = None
                self._note, self._lost = RESTART_NOTE.format(why=str(res.status)), True
            return res

    def close(self) -> None:
        """End the interpreter (kills everything it started); idempotent."""
        with self._lock:
            self._closed = True
            self._finalizer()
