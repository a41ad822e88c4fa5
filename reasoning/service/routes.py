"""The routes of ``verimath serve`` (see :mod:`verimath.reasoning.service.app` for the API)."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from verimath.reasoning.sandbox import SandboxError
from verimath.reasoning.service import schemas as S

if TYPE_CHECKING:
    from verimath.reasoning.service.app import ServiceState


def _limits(state: ServiceState, timeout_s: float | None, memory_mb: int | None,
            where: str) -> tuple[float, int]:
    try:
        return state.limits(timeout_s, memory_mb)
    except ValueError as e:
        raise HTTPException(400, f"{where}: {e}") from e


def check_batch(state: ServiceState, n: int, field: str) -> None:
    """422 naming ``field`` (as the OpenAPI ``maxItems`` says) over ``max_batch`` items."""
    from fastapi.exceptions import RequestValidationError

    if n > state.cfg.max_batch:
        raise RequestValidationError([{
            "type": "too_long", "loc": ("body", field), "input": n,
            "msg": f"{n} items in one request; this server's limit is {state.cfg.max_batch}"}])


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: ``codes`` plus what the guard may answer anywhere.

    Every route may get 401 (API key), 413 (body size) and 429 (too many in flight) from
    :class:`~verimath.reasoning.service.app.Guard`; 422 is FastAPI's own (a field of the wrong
    type or out of bounds, or a batch over ``max_batch``, named in ``detail``).
    """
    desc = {400: "over this server's limits, or a body that is not JSON",
            401: "missing or wrong API key",
            404: "no such session", 413: "request body too large", 429: "busy; see Retry-After",
            503: "the sandbox or grader is unavailable (could not judge)"}
    return {c: {"model": S.ErrorBody, "description": desc[c]}
            for c in sorted({401, 413, 429, *codes})}


def _finite(x: Any) -> Any:
    """``x`` with non-finite floats as strings (JSON has no ``inf``)."""
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def add_routes(app: FastAPI, state: ServiceState) -> None:
    """Register every route on ``app`` (and show this server's limits in its OpenAPI)."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from verimath.reasoning.service.compat_routes import add_compat_routes

    @app.exception_handler(RequestValidationError)
    async def invalid(_req: Any, exc: RequestValidationError) -> Any:
        # FastAPI's own answer, except that an ``inf`` input (1e400) is echoed as a string
        # rather than failing to serialise (a 500)
        return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))},
                            status_code=422)

    _add_exec_routes(app, state)
    _add_session_routes(app, state)
    add_compat_routes(app, state)
    _add_info_routes(app, state)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = S.schema_limits(schema, state.cfg.max_timeout_s,
                                                 state.cfg.max_memory_mb,
                                                 state.cfg.max_batch)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_exec_routes(app: FastAPI, state: ServiceState) -> None:
    @app.post("/run_code", response_model=S.RunCodeResponse, responses=errors(400))
    async def run_code(req: S.RunCodeRequest) -> S.RunCodeResponse:
        memory = req.memory_limit_MB if req.memory_limit_MB > 0 else None
        timeout, mem = _limits(state, S.capped(req, "run_timeout", state.cfg.max_timeout_s),
                               memory, "run_code")
        res = await state.execute(S.with_stdin(req.code, req.stdin), timeout, mem)
        return S.to_sandboxfusion(res)

    @app.post("/v1/exec", response_model=S.ExecResults, responses=errors(400))
    async def exec_batch(batch: S.ExecBatch) -> dict[str, Any]:
        check_batch(state, len(batch.requests), "requests")
        lims = [_limits(state, r.timeout_s, r.memory_mb, f"requests[{i}]")
                for i, r in enumerate(batch.requests)]
        results = await asyncio.gather(*(state.execute(r.code, t, m)
                                         for r, (t, m) in zip(batch.requests, lims, strict=True)))
        return {"results": [S.result_dict(res, r.id)
                            for r, res in zip(batch.requests, results, strict=True)]}

    @app.post("/v1/grade", response_model=S.GradeResults, responses=errors(400, 503))
    async def grade(batch: S.GradeBatch) -> dict[str, Any]:
        from verimath.reasoning.grading import GraderClosed, GraderUnavailable

        check_batch(state, len(batch.pairs), "pairs")
        pairs = [(p.gold, p.pred) for p in batch.pairs]
        try:
            lim = state.grade_limiter
            grader = await state.blocking(state.get_grader, limiter=lim)
            verdicts = await state.blocking(
                lambda: grader.grade_many(pairs, extract=batch.extract), limiter=lim)
        except (GraderUnavailable, GraderClosed) as e:  # closed: this server is shutting down
            raise HTTPException(503, f"grader unavailable: {e}") from e
        for v in verdicts:
            state.metrics.verdicts.labels(status=str(v.status)).inc()
        return {"verdicts": [v.to_dict() for v in verdicts]}


def _add_session_routes(app: FastAPI, state: ServiceState) -> None:
    from verimath.reasoning.service.app import new_session_id

    @app.post("/v1/sessions", response_model=S.SessionOpened, responses=errors(400, 503))
    async def open_session(req: S.SessionOpen | None = None) -> Any:
        req = req or S.SessionOpen(timeout_s=None, memory_mb=None)
        timeout, mem = _limits(state, req.timeout_s, req.memory_mb, "session")
        sid = new_session_id()
        try:
            s = await state.open_session(sid, timeout, mem, req.echo)
        except SandboxError as e:
            raise HTTPException(503, f"cannot open a session: {e}") from e
        if s is None:
            return busy(state, f"{len(state.sessions)} sessions open (the limit)")
        return {"session_id": sid, "isolation": state.sandbox.isolation}

    @app.post("/v1/sessions/{sid}/run", response_model=S.ExecResultBody,
              responses=errors(400, 404))
    async def run_cell(sid: str, req: S.CellRun) -> dict[str, Any]:
        timeout, _ = _limits(state, req.timeout_s, None, "cell")
        s = state.sessions.get(sid)
        if s is None:
            raise HTTPException(404, f"no session {sid!r} (closed, idle too long, or the "
                                     "server restarted)")
        return S.result_dict(await state.run_cell(s, req.code, timeout))

    @app.delete("/v1/sessions/{sid}", response_model=S.SessionClosed, responses=errors(404))
    async def close_session(sid: str) -> dict[str, Any]:
        if sid not in state.sessions:
            raise HTTPException(404, f"no session {sid!r}")
        await state.blocking(state.drop_session, sid, limiter=state.admin_limiter)
        return {"closed": sid}


def busy(state: ServiceState, why: str) -> Any:
    """A 429 answer with ``Retry-After`` (``why`` in ``detail``)."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": f"busy: {why}"}, status_code=429,
                        headers={"Retry-After": str(state.cfg.retry_after_s)})


def _add_info_routes(app: FastAPI, state: ServiceState) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    from verimath import __version__

    @app.get("/health", response_model=S.Health, responses={  # no auth, no 429 here
        413: errors()[413], 503: {"model": S.Health, "description": "the sandbox refused work"}})
    async def health() -> Any:
        from fastapi.responses import JSONResponse

        sb = state.sandbox
        gc = getattr(state.grader, "config", None) or state.cfg.grader
        body = {"status": "broken" if state.broken else "ok", "version": __version__,
                "isolation": sb.isolation, "workers": sb.config.workers,
                "inflight": state.inflight, "sessions": len(state.sessions),
                "grader_started": state.grader is not None,
                "grader": {"comparison_timeout_s": gc.timeout_s, "workers": gc.workers,
                           "call_budget_s": gc.call_budget_s()}}
        if state.broken:
            body["reason"] = state.broken
        return JSONResponse(body, status_code=503 if state.broken else 200)

    @app.get("/metrics", response_class=Response, responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {
            "type": "string"}}}, "description": "Prometheus text format"},
        **errors()})
    async def metrics() -> Response:
        body, ctype = state.metrics.render()
        return Response(body, media_type=ctype)
