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

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from verimath.reasoning.sandbox import ExecResult, ExecStatus

#: Every request model is strict: no coercion (``false`` is not a number, ``0`` is not a
#: boolean, ``"2"`` is not a float); a wrong type is a 422 naming the field. JSON integers are
#: accepted where a float is expected.
STRICT = ConfigDict(extra="forbid", strict=True)
#: The same, for the formats of other projects whose clients send fields we do not use.
STRICT_IGNORE = ConfigDict(extra="ignore", strict=True)

#: Hard bounds of every time limit on the wire, seconds. A server's own ``max_timeout_s`` is
#: tighter; the OpenAPI schema shows that one (:func:`schema_limits`).
MIN_TIMEOUT_S = 1e-3
MAX_TIMEOUT_S = 86_400.0
#: Hard bound of every memory limit, MB (the server's ``max_memory_mb`` is tighter).
MAX_MEMORY_MB = 1 << 20
#: Largest ``max_output_characters`` (NeMo-Skills) accepted.
MAX_OUTPUT_CHARS = 1 << 24


def _integral(v: Any) -> Any:
    """JSON Schema's integer: ``510.0`` is one (made ``510``); booleans are not."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


#: an integer field that also takes integral JSON numbers such as ``510.0`` (still no bools,
#: no strings, no ``510.5``)
Int = Annotated[int, BeforeValidator(_integral)]
#: a memory limit in MB, an :data:`Int` in [1, ``MAX_MEMORY_MB``]
MemoryMB = Annotated[int, Field(ge=1, le=MAX_MEMORY_MB), BeforeValidator(_integral)]


def timeout_field(default: float | None, **kw: Any) -> Any:
    """A time limit field: finite, in [``MIN_TIMEOUT_S``, ``MAX_TIMEOUT_S``] seconds."""
    return Field(default, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S, allow_inf_nan=False, **kw)


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer: ``detail`` says what was wrong (a field, a limit)."""

    detail: str


class RunCodeRequest(BaseModel):
    """SandboxFusion's request.

    Fields we do not use (``compile_timeout``, ``args``) are accepted; ``files`` /
    ``fetch_files`` must be empty; ``language`` must be ``python``. ``memory_limit_MB`` <= 0
    means the server's default.
    """

    model_config = STRICT_IGNORE

    code: str
    language: Literal["python"] = "python"
    run_timeout: float = timeout_field(10.0)
    compile_timeout: float = Field(10.0, ge=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    memory_limit_MB: Int = Field(-1, ge=-1, le=MAX_MEMORY_MB)  # noqa: N815 - SandboxFusion's
    stdin: str | None = None
    files: dict[str, str | None] = Field(default_factory=dict, max_length=0)
    fetch_files: list[str] = Field(default_factory=list, max_length=0)


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

    model_config = STRICT

    code: str
    id: str | None = None
    timeout_s: float | None = timeout_field(None)
    memory_mb: MemoryMB | None = None


class ExecBatch(BaseModel):
    """Body of ``POST /v1/exec``: results come back in the same order."""

    model_config = STRICT

    requests: list[ExecRequest]


class SessionOpen(BaseModel):
    """Body of ``POST /v1/sessions`` (all optional; None: the server's defaults)."""

    model_config = STRICT

    timeout_s: float | None = timeout_field(None)
    memory_mb: MemoryMB | None = None
    echo: bool = True


class CellRun(BaseModel):
    """Body of ``POST /v1/sessions/{id}/run``."""

    model_config = STRICT

    code: str
    timeout_s: float | None = timeout_field(None)


class GradePair(BaseModel):
    """One gold/prediction pair of ``POST /v1/grade`` (see :meth:`Grader.grade`)."""

    model_config = STRICT

    gold: str | None
    pred: str | None


class GradeBatch(BaseModel):
    """Body of ``POST /v1/grade``: verdicts come back in the same order."""

    model_config = STRICT

    pairs: list[GradePair]
    extract: bool = True


class ExecResultBody(BaseModel):
    """One :class:`~verimath.reasoning.sandbox.ExecResult` as JSON (times in seconds).

    ``status`` is an :class:`~verimath.reasoning.sandbox.ExecStatus` value; ``sandbox_error``
    and ``restarted: true`` are infrastructure failures (could not judge).
    """

    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    wall_time_s: float
    cpu_time_s: float
    isolation: str
    restarted: bool = False
    id: str | None = None


class ExecResults(BaseModel):
    """Answer of ``POST /v1/exec``: one result per request, in order."""

    results: list[ExecResultBody]


class VerdictBody(BaseModel):
    """One :class:`~verimath.records.Verdict` as JSON."""

    status: str
    reason: str
    detail: dict[str, Any]


class GradeResults(BaseModel):
    """Answer of ``POST /v1/grade``: one verdict per pair, in order."""

    verdicts: list[VerdictBody]


class SessionOpened(BaseModel):
    """Answer of ``POST /v1/sessions``."""

    session_id: str
    isolation: str


class SessionClosed(BaseModel):
    """Answer of ``DELETE /v1/sessions/{id}``."""

    closed: str


class GraderBudget(BaseModel):
    """The grader settings a ``/v1/grade`` client sizes its request deadline from.

    ``comparison_timeout_s`` is the grader's ``timeout_s`` (named apart from the request
    fields whose maximum the schema states); ``call_budget_s`` is
    :meth:`~verimath.reasoning.grading.GraderConfig.call_budget_s`: the most wall time one
    comparison may take (seconds), re-checks and worker starts included.
    """

    comparison_timeout_s: float
    workers: int
    call_budget_s: float


class Health(BaseModel):
    """Answer of ``GET /health`` (200 ``ok``, 503 ``broken`` with ``reason``).

    ``grader`` is None only from servers older than this field.
    """

    status: Literal["ok", "broken"]
    version: str
    isolation: str
    workers: int
    inflight: int
    sessions: int
    grader_started: bool
    grader: GraderBudget | None = None
    reason: str | None = None


#: request fields that are time limits / memory limits / batches, for :func:`schema_limits`
_TIME_FIELDS = frozenset({"run_timeout", "timeout_s", "timeout", "cell_timeout",
                          "total_timeout"})
_MEMORY_FIELDS = frozenset({"memory_limit_MB", "memory_mb"})
_BATCH_FIELDS = frozenset({"requests", "pairs", "cells", "snippets"})


#: a request model whose time limit is its own, not the sandbox's (kimina's ``/api/check``: a
#: Lean check's ``timeout`` is bounded by the Lean service): :func:`schema_limits` leaves its
#: time fields alone (its batch is still ``max_batch``)
OWN_LIMITS = "x-verimath-own-limits"


def schema_limits(schema: dict[str, Any], max_timeout_s: float, max_memory_mb: int,
                  max_batch: int) -> dict[str, Any]:
    """Write one server's limits into its OpenAPI ``schema`` (in place; returned).

    The request models carry hard bounds; a server's ``max_timeout_s`` / ``max_memory_mb`` /
    ``max_batch`` are tighter and answered with 400 / 422. Showing them as ``maximum`` /
    ``maxItems`` makes the schema say exactly what this server accepts; a default over the
    maximum is shown capped, as :func:`capped` applies it. The time fields of models marked
    :data:`OWN_LIMITS` are left alone.
    """
    for model in schema.get("components", {}).get("schemas", {}).values():
        own_time = bool(model.get(OWN_LIMITS))
        for name, prop in (model.get("properties") or {}).items():
            alts = prop.get("anyOf", [prop])
            for alt in alts:
                kind = alt.get("type")
                if name in _TIME_FIELDS and kind in ("number", "integer") and not own_time:
                    alt["maximum"] = min(alt.get("maximum", max_timeout_s), max_timeout_s)
                elif name in _MEMORY_FIELDS and kind == "integer":
                    alt["maximum"] = min(alt.get("maximum", max_memory_mb), max_memory_mb)
                elif name in _BATCH_FIELDS and kind == "array":
                    alt["maxItems"] = min(alt.get("maxItems", max_batch), max_batch)
                    continue
                else:
                    continue
                if isinstance(prop.get("default"), int | float):  # an omitted field is capped
                    prop["default"] = min(prop["default"], alt["maximum"])
    return schema


def capped(model: BaseModel, name: str, maximum: float) -> Any:
    """Field ``name`` of ``model``; a default (field not sent) is capped at ``maximum``.

    Other projects' formats have defaults (SandboxFusion's ``total_timeout`` 45 s) that may be
    over a server's ``max_timeout_s``: a client that did not ask for them gets the maximum, a
    client that did gets 400.
    """
    value = getattr(model, name)
    if name in model.model_fields_set or value is None:
        return value
    return min(value, maximum)


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
