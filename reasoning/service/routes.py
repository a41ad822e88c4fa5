"""The routes of ``verimath serve`` (see :mod:`verimath.reasoning.service.app` for the API)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from verimath.reasoning.sandbox import ExecStatus, SandboxError
from verimath.reasoning.sandbox.result import failed
from verimath.reasoning.service import schemas as S

if TYPE_CHECKING:
    from verimath.reasoning.service.app import ServiceState


def _limits(state: ServiceState, timeout_s: float | None, memory_mb: int | None,
            where: str) -> tuple[float, int]:
    try:
        return state.limits(timeout_s, memory_mb)
    except ValueError as e:
        raise HTTPException(400, f"{where}: {e}") from e


def _check_batch(state: ServiceState, n: int, what: str) -> None:
    if n > state.cfg.max_batch:
        raise HTTPException(413, f"{n} {what} in one request; the limit is {state.cfg.max_batch}")


def add_routes(app: FastAPI, state: ServiceState) -> None:
    """Register every route on ``app``."""
    _add_exec_routes(app, state)
    _add_session_routes(app, state)
    _add_info_routes(app, state)


def _add_exec_routes(app: FastAPI, state: ServiceState) -> None:
    @app.post("/run_code", response_model=S.RunCodeResponse)
    async def run_code(req: S.RunCodeRequest) -> S.RunCodeResponse:
        if req.language != "python":
            raise HTTPException(400, f"language {req.language!r} is not supported: verimath "
                                     "serve runs Python only")
        if req.files or req.fetch_files:
            raise HTTPException(400, "files / fetch_files are not supported")
        memory = req.memory_limit_MB if req.memory_limit_MB > 0 else None
        timeout, mem = _limits(state, req.run_timeout, memory, "run_code")
        res = await state.execute(S.with_stdin(req.code, req.stdin), timeout, mem)
        return S.to_sandboxfusion(res)

    @app.post("/v1/exec")
    async def exec_batch(batch: S.ExecBatch) -> dict[str, Any]:
        _check_batch(state, len(batch.requests), "programs")
        lims = [_limits(state, r.timeout_s, r.memory_mb, f"requests[{i}]")
                for i, r in enumerate(batch.requests)]
        results = await asyncio.gather(*(state.execute(r.code, t, m)
                                         for r, (t, m) in zip(batch.requests, lims, strict=True)))
        return {"results": [S.result_dict(res, r.id)
                            for r, res in zip(batch.requests, results, strict=True)]}

    @app.post("/v1/grade")
    async def grade(batch: S.GradeBatch) -> dict[str, Any]:
        from verimath.reasoning.grading import GraderClosed, GraderUnavailable

        _check_batch(state, len(batch.pairs), "pairs")
        pairs = [(p.gold, p.pred) for p in batch.pairs]
        try:
            grader = await state.blocking(state.get_grader)
            verdicts = await state.blocking(
                lambda: grader.grade_many(pairs, extract=batch.extract))
        except (GraderUnavailable, GraderClosed) as e:  # closed: this server is shutting down
            raise HTTPException(503, f"grader unavailable: {e}") from e
        for v in verdicts:
            state.metrics.verdicts.labels(status=str(v.status)).inc()
        return {"verdicts": [v.to_dict() for v in verdicts]}


def _add_session_routes(app: FastAPI, state: ServiceState) -> None:
    from verimath.reasoning.service.app import _Session, new_session_id

    @app.post("/v1/sessions")
    async def open_session(req: S.SessionOpen | None = None) -> Any:
        req = req or S.SessionOpen(timeout_s=None, memory_mb=None)
        if len(state.sessions) >= state.cfg.max_sessions:
            return _busy(state, f"{len(state.sessions)} sessions open (the limit)")
        timeout, mem = _limits(state, req.timeout_s, req.memory_mb, "session")
        try:
            sess = await state.blocking(
                lambda: state.sandbox.session(timeout_s=timeout, memory_mb=mem, echo=req.echo))
        except SandboxError as e:
            raise HTTPException(503, f"cannot open a session: {e}") from e
        sid = new_session_id()
        state.sessions[sid] = _Session(sess, time.monotonic())
        state.metrics.sessions.set(len(state.sessions))
        return {"session_id": sid, "isolation": state.sandbox.isolation}

    @app.post("/v1/sessions/{sid}/run")
    async def run_cell(sid: str, req: S.CellRun) -> dict[str, Any]:
        s = state.sessions.get(sid)
        if s is None:
            raise HTTPException(404, f"no session {sid!r} (closed, idle too long, or the "
                                     "server restarted)")
        timeout, _ = _limits(state, req.timeout_s, None, "cell")
        s.busy += 1
        try:
            res = await state.blocking(lambda: s.session.run(req.code, timeout_s=timeout))
        except SandboxError as e:
            res = failed(ExecStatus.SANDBOX_ERROR, str(e), state.sandbox.isolation)
        finally:
            s.busy -= 1
            s.last_used = time.monotonic()
        state.metrics.exec_status.labels(status=str(res.status)).inc()
        return S.result_dict(res)

    @app.delete("/v1/sessions/{sid}")
    async def close_session(sid: str) -> dict[str, Any]:
        if sid not in state.sessions:
            raise HTTPException(404, f"no session {sid!r}")
        await state.blocking(state.drop_session, sid)
        return {"closed": sid}


def _busy(state: ServiceState, why: str) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": f"busy: {why}"}, status_code=429,
                        headers={"Retry-After": str(state.cfg.retry_after_s)})


def _add_info_routes(app: FastAPI, state: ServiceState) -> None:
    from verimath import __version__

    @app.get("/health")
    async def health() -> Any:
        from fastapi.responses import JSONResponse

        sb = state.sandbox
        body = {"status": "broken" if state.broken else "ok", "version": __version__,
                "isolation": sb.isolation, "workers": sb.config.workers,
                "inflight": state.inflight, "sessions": len(state.sessions),
                "grader_started": state.grader is not None}
        if state.broken:
            body["reason"] = state.broken
        return JSONResponse(body, status_code=503 if state.broken else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        body, ctype = state.metrics.render()
        return Response(body, media_type=ctype)
