"""Wire formats of other projects' sandboxes, mapped onto our sessions (pure functions).

**SandboxFusion ``POST /run_jupyter``** (bytedance/SandboxFusion, ``sandbox_api.py``; client:
PyPI ``sandbox-fusion``, ``RunJupyterRequest`` / ``RunJupyterResponse``): all ``cells`` run in
one fresh interpreter (one :class:`~verimath.reasoning.sandbox.SandboxSession`, closed at the
end), each for at most ``cell_timeout`` seconds (0: no own limit) and all together for at most
``total_timeout``. Per cell: ``stdout``, ``stderr``, ``display`` (the value of a final bare
expression, as Jupyter's ``{"text/plain": repr}``) and ``error`` (Jupyter's ``{"ename",
"evalue", "traceback"}`` of an exception; the next cells still run). Top-level ``status``:

* ``Success``: every cell ran (some may have raised: see their ``error``);
* ``Failed``: the program's own doing stopped the notebook: a cell ran out of time (``driver``
  ``TimeLimitExceeded``) or ended its interpreter (memory, crash, ``os._exit``: ``driver``
  ``Finished`` with ``return_code`` 1). The cells that ran are returned;
* ``SandboxError``: infrastructure (the session could not open, the interpreter was lost by
  the sandbox: ``driver`` ``Error``). The official client raises on it: could not judge.

**NeMo-Skills ``POST /execute``** (NVIDIA/NeMo-Skills, ``local_sandbox_server.py``): body
``generated_code``, ``timeout``, ``language``, ``std_input``, ``max_output_characters``,
``traceback_verbosity``; with ``language: ipython`` the ``X-Session-ID`` header names a
stateful session (created on first use; without the header the cell runs in a fresh one).
Answer: ``process_status``, ``stdout``, ``stderr`` (each cut to ``max_output_characters`` and
marked ``<output cut>``), for ipython ``new_session_created`` (true when this cell did not
see earlier state: a new session, or the interpreter was restarted, e.g. after a timeout).
``process_status``:

* ``completed``: ran to the end (``python``: any exit code, as NeMo-Skills; ``ipython``: no
  exception);
* ``error``: ``ipython`` cell raised or ended its interpreter;
* ``timeout``: the program ran out of ``timeout`` (judged: the program's fault);
* ``sandbox_error`` (ours): infrastructure failure, could not judge. NeMo-Skills' own statuses
  have no such value; a client comparing with ``completed`` treats it as not completed, and
  ``exec_status`` / ``could_not_judge`` say why.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from verimath.reasoning.sandbox import ExecResult, ExecStatus
from verimath.reasoning.sandbox.session import RESTART_NOTE
from verimath.reasoning.service.schemas import (
    MAX_OUTPUT_CHARS,
    MAX_TIMEOUT_S,
    STRICT_IGNORE,
    CommandRunResult,
    Int,
    timeout_field,
)
from verimath.records import judged

#: How a cell that was not the program's doing starts its stderr (a replacement interpreter).
RESTART_PREFIX = RESTART_NOTE.split("(", 1)[0]
OUTPUT_CUT = "<output cut>"


# ---------------------------------------------------------------------------- SandboxFusion


class RunJupyterRequest(BaseModel):
    """SandboxFusion's ``RunJupyterRequest``; ``files`` / ``fetch_files`` must be empty."""

    model_config = STRICT_IGNORE

    cells: list[str]
    cell_timeout: float = Field(0.0, ge=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    total_timeout: float = timeout_field(45.0)
    kernel: Literal["python3"] = "python3"
    files: dict[str, str] = Field(default_factory=dict, max_length=0)
    fetch_files: list[str] = Field(default_factory=list, max_length=0)


class CellRunResult(BaseModel):
    """SandboxFusion's ``CellRunResult`` plus our ``exec_status``."""

    stdout: str
    stderr: str
    display: list[dict[str, Any]]
    error: list[dict[str, Any]]
    exec_status: str = ""


class RunJupyterResponse(BaseModel):
    """SandboxFusion's ``RunJupyterResponse`` plus ``isolation``."""

    status: Literal["Success", "Failed", "SandboxError"]
    message: str = ""
    driver: CommandRunResult | None = None
    cells: list[CellRunResult] = Field(default_factory=list)
    executor_pod_name: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    isolation: str = ""


def display_marker(token: str) -> str:
    """The line marker of a displayed value (``token``: per request, unguessable)."""
    return f"\x1evm-display-{token}\x1e"


def with_display(code: str, marker: str) -> str:
    """``code`` whose final bare expression prints ``marker + repr(value) + marker``.

    Line and column numbers of ``code`` are unchanged (the expression is wrapped in place), so
    tracebacks point where the user wrote. None is not displayed (as in Jupyter). Code that
    does not parse is returned unchanged (running it reports the SyntaxError).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    node = tree.body[-1].value
    lines = code.splitlines(keepends=True)
    if node.end_lineno is None or node.end_col_offset is None:
        return code
    # offsets are in UTF-8 bytes; edit the end first so the start stays valid
    end = lines[node.end_lineno - 1].encode()
    lines[node.end_lineno - 1] = (end[:node.end_col_offset] + b")"
                                  + end[node.end_col_offset:]).decode()
    start = lines[node.lineno - 1].encode()
    show = (f"(lambda _vm_v: None if _vm_v is None else print({marker!r} + repr(_vm_v) + "
            f"{marker!r}, flush=True))(").encode()
    lines[node.lineno - 1] = (start[:node.col_offset] + show + start[node.col_offset:]).decode()
    return "".join(lines)


def split_display(stdout: str, marker: str) -> tuple[str, list[dict[str, Any]]]:
    """(stdout without displayed values, Jupyter display items) of a cell's stdout."""
    pat = re.compile(re.escape(marker) + r"(.*?)" + re.escape(marker) + r"\n?", re.DOTALL)
    shown = [{"text/plain": m.group(1)} for m in pat.finditer(stdout)]
    return pat.sub("", stdout), shown


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


def cell_error(res: ExecResult) -> list[dict[str, Any]]:
    """Jupyter's error output (``ename``, ``evalue``, ``traceback`` lines) of a failed cell."""
    if res.status is not ExecStatus.RUNTIME_ERROR:
        return []
    lines = [ln for ln in res.stderr.splitlines() if not ln.startswith(RESTART_PREFIX)]
    start = max((i for i, ln in enumerate(lines) if ln.startswith("Traceback")), default=0)
    tb = lines[start:]
    for ln in reversed(tb):
        m = _EXC_LINE.match(ln.strip())
        if m and not ln.startswith(" "):
            return [{"ename": m.group(1), "evalue": m.group(2) or "", "traceback": tb}]
    return [{"ename": "SystemExit" if res.exit_code else "Error",
             "evalue": str(res.exit_code), "traceback": tb}]


def jupyter_cell(res: ExecResult, marker: str) -> CellRunResult:
    """One cell's result in SandboxFusion's shape."""
    stdout, shown = split_display(res.stdout, marker)
    return CellRunResult(stdout=stdout, stderr=res.stderr, display=shown,
                         error=cell_error(res), exec_status=str(res.status))


# ---------------------------------------------------------------------------- NeMo-Skills


class ExecuteRequest(BaseModel):
    """NeMo-Skills' ``/execute`` body (unknown fields, e.g. an old ``session_id``, ignored)."""

    model_config = STRICT_IGNORE

    generated_code: str
    timeout: float = timeout_field(10.0)
    language: Literal["ipython", "python", "python3"] = "ipython"
    std_input: str = ""
    max_output_characters: Int = Field(1000, ge=0, le=MAX_OUTPUT_CHARS)
    traceback_verbosity: Literal["Plain", "Context", "Verbose", "Minimal", "Docs"] = "Plain"


class ExecuteResponse(BaseModel):
    """NeMo-Skills' ``/execute`` answer plus ``exec_status``, ``could_not_judge``, ``isolation``.

    ``new_session_created`` is given for ``ipython`` (None otherwise).
    """

    process_status: Literal["completed", "error", "timeout", "sandbox_error"]
    stdout: str
    stderr: str
    new_session_created: bool | None = None
    exec_status: str
    could_not_judge: bool
    exit_code: int | None = None
    isolation: str = ""


class SessionInfo(BaseModel):
    """One entry of ``GET /sessions`` (times: Unix seconds)."""

    backend: str
    created: float
    last_used: float
    alive: bool


class SessionList(BaseModel):
    """Answer of ``GET /sessions``: sessions by ``X-Session-ID``."""

    sessions: dict[str, SessionInfo]
    backend: str


class SessionDeleted(BaseModel):
    """Answer of ``DELETE /sessions/{id}``."""

    message: str


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters and marked, as NeMo-Skills does."""
    return text if len(text) <= limit else text[:limit] + OUTPUT_CUT


def fresh_interpreter(res: ExecResult) -> bool:
    """True when a session cell ran in a replacement interpreter (earlier state lost)."""
    return res.restarted or res.stderr.startswith(RESTART_PREFIX)


def nemo_result(res: ExecResult, language: str, limit: int,
                new_session: bool | None) -> ExecuteResponse:
    """Map one result onto NeMo-Skills' answer (rules in the module docstring)."""
    s = res.status
    status: Literal["completed", "error", "timeout", "sandbox_error"]
    if not judged(res):  # the one predicate (verimath.records.judged)
        status = "sandbox_error"
    elif s is ExecStatus.TIMEOUT:
        status = "timeout"
    elif language == "ipython":
        status = "completed" if s is ExecStatus.OK else "error"
    else:  # a program: NeMo-Skills says completed whatever its exit code
        status = "completed" if s is not ExecStatus.REJECTED else "error"
    return ExecuteResponse(process_status=status, stdout=cut(res.stdout, limit),
                           stderr=cut(res.stderr, limit), new_session_created=new_session,
                           exec_status=str(s), could_not_judge=status == "sandbox_error",
                           exit_code=res.exit_code, isolation=res.isolation)
