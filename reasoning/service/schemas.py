"""Wire formats of ``verimath serve`` (pydantic models) and the SandboxFusion mapping.

``POST /run_code`` follows SandboxFusion's ``RunCodeRequest`` / ``RunCodeResponse``
(bytedance/SandboxFusion, ``sandbox/server/sandbox_api.py``) so that clients written for it,
such as verl's ``sandbox_fusion`` reward and tool, work unchanged. Its rules, kept here:

* top-level ``status``: ``Success`` (the program ran and exited 0), ``Failed`` (it ran and
  failed: non-zero exit, time limit, memory, output limit, signal, or it was rejected),
  ``SandboxError`` (infrastructure; never the program's fault);
* ``run_result.status``: ``Finished`` (the process ended on its own, any exit code),
  ``TimeLimitExceeded``, ``Error`` (sandbox-side error, only with ``SandboxError``).

We add ``isolation`` (what was in force) and ``exec_status`` (our
:class:`~verimath.reasoning.sandbox.ExecStatus`), so nothing is lost in the mapping.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verimath.reasoning.sandbox import ExecResult, ExecStatus


class RunCodeRequest(BaseModel):
    """SandboxFusion's request.

    Fields we do not use (``compile_timeout``, ``files``, ``fetch_files``, ``args``) are
    accepted; ``files`` / ``fetch_files`` must be empty.
    """

    model_config = ConfigDict(extra="ignore")

    code: str
    language: str = "python"
    run_timeout: float = Field(10.0, gt=0)
    compile_timeout: float = 10.0
    memory_limit_MB: int = -1  # noqa: N815 - SandboxFusion's field name
    stdin: str | None = None
    files: dict[str, str | None] = Field(default_factory=dict)
    fetch_files: list[str] = Field(default_factory=list)


class CommandRunResult(BaseModel):
    """SandboxFusion's ``CommandRunResult``: times in seconds."""

    status: Literal["Finished", "Error", "TimeLimitExceeded"]
    execution_time: float | None = None
    return_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None


class RunCodeResponse(BaseModel):
    """SandboxFusion's response plus ``isolation`` and ``exec_status``."""

    status: Literal["Success", "Failed", "SandboxError"]
    message: str = ""
    compile_result: CommandRunResult | None = None
    run_result: CommandRunResult | None = None
    executor_pod_name: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    isolation: str = ""
    exec_status: str = ""


class ExecRequest(BaseModel):
    """One program of ``POST /v1/exec``: the record of ``verimath exec --batch``.

    ``timeout_s`` / ``memory_mb`` None means the server's defaults; ``id`` is echoed back.
    """

    model_config = ConfigDict(extra="forbid")

    code: str
    id: str | None = None
    timeout_s: float | None = Field(None, gt=0)
    memory_mb: int | None = Field(None, gt=0)


class ExecBatch(BaseModel):
    """Body of ``POST /v1/exec``: results come back in the same order."""

    model_config = ConfigDict(extra="forbid")

    requests: list[ExecRequest]


class SessionOpen(BaseModel):
    """Body of ``POST /v1/sessions`` (all optional; None: the server's defaults)."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float | None = Field(None, gt=0)
    memory_mb: int | None = Field(None, gt=0)
    echo: bool = True


class CellRun(BaseModel):
    """Body of ``POST /v1/sessions/{id}/run``."""

    model_config = ConfigDict(extra="forbid")

    code: str
    timeout_s: float | None = Field(None, gt=0)


class GradePair(BaseModel):
    """One gold/prediction pair of ``POST /v1/grade`` (see :meth:`Grader.grade`)."""

    model_config = ConfigDict(extra="forbid")

    gold: str | None
    pred: str | None


class GradeBatch(BaseModel):
    """Body of ``POST /v1/grade``: verdicts come back in the same order."""

    model_config = ConfigDict(extra="forbid")

    pairs: list[GradePair]
    extract: bool = True


def result_dict(res: ExecResult, rid: str | None = None) -> dict[str, Any]:
    """Our ExecResult as JSON (``verimath exec``'s object), with ``id`` when given."""
    d = res.to_dict()
    if rid is not None:
        d["id"] = rid
    return d


def result_from_dict(d: dict[str, Any]) -> ExecResult:
    """Inverse of :func:`result_dict` (``id`` ignored).

    Raises:
        KeyError / ValueError: ``d`` is not an ExecResult object (a protocol bug).
    """
    return ExecResult(ExecStatus(d["status"]), str(d["stdout"]), str(d["stderr"]),
                      d["exit_code"], float(d["wall_time_s"]), float(d["cpu_time_s"]),
                      str(d["isolation"]), restarted=bool(d.get("restarted", False)))


def to_sandboxfusion(res: ExecResult) -> RunCodeResponse:
    """Map one ExecResult onto SandboxFusion's response (rules in the module docstring)."""
    s = res.status
    if s is ExecStatus.SANDBOX_ERROR:
        run = CommandRunResult(status="Error", execution_time=res.wall_time_s,
                               stdout=res.stdout, stderr=res.stderr)
        return RunCodeResponse(status="SandboxError", message=res.stderr.strip(),
                               run_result=run, isolation=res.isolation, exec_status=str(s))
    run_status: Literal["Finished", "TimeLimitExceeded"] = (
        "TimeLimitExceeded" if s is ExecStatus.TIMEOUT else "Finished")
    run = CommandRunResult(status=run_status, execution_time=res.wall_time_s,
                           return_code=res.exit_code, stdout=res.stdout, stderr=res.stderr)
    ok = s is ExecStatus.OK
    message = "" if ok else str(s)
    return RunCodeResponse(status="Success" if ok else "Failed", message=message, run_result=run,
                           isolation=res.isolation, exec_status=str(s))


def with_stdin(code: str, stdin: str | None) -> str:
    """``code`` with ``sys.stdin`` replaced by ``stdin`` (programs otherwise read /dev/null).

    The sandbox gives programs no stdin, so a one-line prologue sets ``sys.stdin`` to a text
    stream over ``stdin``: ``input()``, ``sys.stdin.read()`` and iteration work; line numbers
    in tracebacks are one higher. Empty or None ``stdin`` leaves ``code`` unchanged (reading
    gives EOF either way). A program starting with ``from __future__`` imports keeps them
    first: the prologue goes after them.
    """
    if not stdin:
        return code
    prologue = f"import sys as _vm_sys, io as _vm_io; _vm_sys.stdin = _vm_io.StringIO({stdin!r})\n"
    lines = code.splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].lstrip().startswith("from __future__"):
        head += 1
    return "".join(lines[:head]) + prologue + "".join(lines[head:])
