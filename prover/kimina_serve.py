"""kimina-lean-server's ``POST /api/check`` offered by ``verimath serve``, with our proof audit.

kimina-client (and anything else written for kimina-lean-server) can point at ``verimath
serve --lean-project DIR``: the same request (``snippets`` [{``id``, ``code``}], ``timeout``,
``debug``, ``reuse``, ``infotree``) and answer (``results`` [{``id``, ``time``, ``error``,
``response``}]) as kimina-lean-server 2.x, where ``response`` is the REPL's JSON with positions
relative to the body after the leading imports (as kimina 2.1.3 reports them).

What differs, on purpose:

* Each snippet's text is screened by :func:`verimath.prover.audit.screen_text` before Lean
  runs: constructs that make Lean accept what is not proved (``axiom``, ``native_decide``,
  ``implemented_by``, ``macro``, ``set_option`` outside the allowed list, metaprogramming,
  attributes, string literals) are answered without running Lean, with one ``error`` message
  ``verimath audit: ...`` at line 1, so kimina-client reports ``lean_error``, never
  ``valid``. ``sorry`` / ``admit`` and ``#check`` / ``#print`` / ``#eval`` / ``#reduce`` pass
  to Lean (kimina-client reports ``sorry`` from the sorries Lean lists).
* Lean runs on our REPL pool (:class:`verimath.prover.repl.ReplPool`: header environments
  reused per process, workers retired after timeouts and crashes); ``reuse`` and
  ``infotree`` are accepted and ignored (the pool always reuses headers; no info trees).

Could-not-judge, as kimina-client reads it: a proof that runs Lean out of ``timeout`` answers
``error: "Lean REPL command timed out in N seconds"`` (``timeout_error``, the proof's own
failure); a crashed REPL, an unusable answer or a check starved by a loaded machine
(:class:`~verimath.prover.types.LeanStarved`) answers ``error: "verimath: could not judge:
..."`` (``server_error``); nothing of that kind is ever a ``response``.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from verimath.prover.audit import COMMAND_KEYWORDS, screen_text
from verimath.prover.kimina import leading_header_lines
from verimath.prover.responses import LeanResponse
from verimath.prover.types import LeanCrash, LeanTimeout, ProverInfraError
from verimath.reasoning.service.schemas import OWN_LIMITS, Int

#: commands a kimina snippet may hold (``axiom`` and attribute/initialize hooks may not)
ALLOWED_COMMANDS = COMMAND_KEYWORDS - {"axiom", "attribute", "initialize",
                                       "builtin_initialize", "import"}
#: findings of :func:`screen_text` that kimina's own reading already covers
_TOLERATED = frozenset({"uses 'sorry'", "uses 'admit'", "contains the command '#check'",
                        "contains the command '#print'", "contains the command '#eval'",
                        "contains the command '#reduce'"})


class KiminaSnippet(BaseModel):
    """One Lean file to check (``id`` is echoed back)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(max_length=256)
    code: str = Field(max_length=1 << 20)


class KiminaCheckRequest(BaseModel):
    """kimina-lean-server's ``/api/check`` request (``timeout`` in seconds)."""

    model_config = ConfigDict(extra="forbid", strict=True,  # not the sandbox's time maximum
                              json_schema_extra={OWN_LIMITS: True})
    snippets: list[KiminaSnippet] = Field(min_length=1, max_length=1024)
    timeout: Int = Field(30, ge=1, le=3600)
    debug: bool = False
    reuse: bool = True
    infotree: str | None = None


class KiminaResult(BaseModel):
    """One snippet's answer: ``response`` (Lean judged) or ``error`` (it did not)."""

    id: str
    time: float = 0.0
    error: str | None = None
    response: dict[str, Any] | None = None


class KiminaCheckResponse(BaseModel):
    """kimina-lean-server's ``/api/check`` answer."""

    results: list[KiminaResult]


def split_header(code: str) -> tuple[str, str]:
    """``(header, body)``: the leading ``import`` / blank lines, and the rest."""
    lines = code.splitlines()
    i = leading_header_lines(code)  # the split kimina-lean-server itself makes
    return "\n".join(x.strip() for x in lines[:i] if x.strip()), "\n".join(lines[i:])


def _pos(line: int, column: int | None) -> dict[str, int]:
    return {"line": line, "column": column or 0}


def to_repl_json(lr: LeanResponse) -> dict[str, Any]:
    """The REPL's JSON for ``lr`` (``env``, ``messages``, ``sorries``; empty lists left out)."""
    out: dict[str, Any] = {} if lr.env is None else {"env": lr.env}
    msgs = [{"severity": m.severity, "pos": _pos(m.line, m.column),
             **({"endPos": _pos(m.end_line, m.end_column)} if m.end_line else {}),
             "data": m.text} for m in lr.messages]
    sorries = [{"goal": s.goal, "proofState": s.proof_state, "pos": _pos(s.line, s.column),
                **({"endPos": _pos(s.end_line, s.end_column)} if s.end_line else {})}
               for s in lr.sorry_info]
    if msgs:
        out["messages"] = msgs
    if sorries:
        out["sorries"] = sorries
    return out


def audit_findings(body: str) -> list[str]:
    """Why ``body`` is refused before Lean runs (empty: it may run)."""
    found = screen_text(body, allowed_commands=ALLOWED_COMMANDS, prelude=True)
    return [f.why for f in found if f.why not in _TOLERATED]


class KiminaCheckService:
    """``POST /api/check`` over a :class:`verimath.prover.checker.LeanRunner`.

    Args:
        runner: where Lean runs (a :class:`~verimath.prover.repl.ReplPool`); closed with the
            server.
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def check_one(self, snippet: KiminaSnippet, timeout_s: float) -> KiminaResult:
        """Audit, then run one snippet (blocking; see the module docstring)."""
        header, body = split_header(snippet.code)
        bad = audit_findings(body)
        if bad:
            msg = {"severity": "error", "pos": {"line": 1, "column": 0},
                   "data": "verimath audit: " + "; ".join(bad)}
            return KiminaResult(id=snippet.id, response={"messages": [msg]})
        t0 = time.monotonic()
        try:
            # a snippet of imports only still elaborates them (a REPL command is never empty)
            lr = self.runner.run(body if body.strip() else "\n", header, timeout_s)
        except LeanTimeout:
            return KiminaResult(id=snippet.id, time=round(time.monotonic() - t0, 6),
                                error=f"Lean REPL command timed out in {timeout_s} seconds")
        except (LeanCrash, ProverInfraError) as e:
            return KiminaResult(id=snippet.id, time=round(time.monotonic() - t0, 6),
                                error=f"verimath: could not judge: {e}")
        return KiminaResult(id=snippet.id, time=round(time.monotonic() - t0, 6),
                            response=to_repl_json(lr))

    def add_routes(self, app: Any, state: Any) -> None:
        """Mount ``POST /api/check`` on ``app`` (checks run in ``state``'s thread pools)."""
        import anyio

        from verimath.reasoning.service.routes import check_batch, errors

        limiter = anyio.CapacityLimiter(max(1, int(getattr(self.runner, "parallelism", 1))))

        @app.post("/api/check", response_model=KiminaCheckResponse,
                  response_model_exclude_none=True, tags=["kimina"], responses=errors(400))
        async def api_check(req: KiminaCheckRequest) -> Any:
            check_batch(state, len(req.snippets), "snippets")
            async def one(s: KiminaSnippet, out: list[Any], i: int) -> None:
                out[i] = await state.blocking(self.check_one, s, float(req.timeout),
                                              limiter=limiter)

            results: list[Any] = [None] * len(req.snippets)
            async with anyio.create_task_group() as tg:
                for i, s in enumerate(req.snippets):
                    tg.start_soon(one, s, results, i)
            return KiminaCheckResponse(results=results)

    def close(self) -> None:
        """Close the runner."""
        self.runner.close()
