"""Routes in other projects' formats: SandboxFusion ``/run_jupyter``, NeMo-Skills ``/execute``.

The formats and their status rules are in :mod:`verimath.reasoning.service.compat`. Both run on
the server's sessions (:meth:`ServiceState.open_session` / :meth:`ServiceState.run_cell`), so
the session limit, the idle reaper and the per-session serialisation hold for them too.
NeMo-Skills sessions live under the key ``"x-session:" + X-Session-ID`` next to ``/v1``'s.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Header, HTTPException

from verimath.reasoning.sandbox import ExecResult, ExecStatus, SandboxError
from verimath.reasoning.sandbox.result import failed
from verimath.reasoning.service import compat as C
from verimath.reasoning.service import schemas as S
from verimath.reasoning.service.routes import _limits, busy, check_batch, errors
from verimath.records import judged

if TYPE_CHECKING:
    from verimath.reasoning.service.app import ServiceState, _Session

NEMO_PREFIX = "x-session:"


def add_compat_routes(app: FastAPI, state: ServiceState) -> None:
    """Register ``/run_jupyter``, ``/execute``, ``GET /sessions``, ``DELETE /sessions/{id}``."""
    _add_jupyter(app, state)
    _add_nemo(app, state)


def _add_jupyter(app: FastAPI, state: ServiceState) -> None:
    @app.post("/run_jupyter", response_model=C.RunJupyterResponse, responses=errors(400))
    async def run_jupyter(req: C.RunJupyterRequest) -> Any:
        check_batch(state, len(req.cells), "cells")
        total, mem = _limits(state, S.capped(req, "total_timeout", state.cfg.max_timeout_s),
                             None, "total_timeout")
        cell_limit, _ = _limits(state, req.cell_timeout or None, None, "cell_timeout")
        key = "jupyter:" + secrets.token_hex(8)
        try:
            s = await state.open_session(key, total, mem, echo=False)
        except SandboxError as e:
            return _jupyter_infra(state, f"cannot open an interpreter: {e}", [])
        if s is None:
            return busy(state, f"{len(state.sessions)} sessions open (the limit)")
        try:
            return await _run_cells(state, s, req, total,
                                    cell_limit if req.cell_timeout else None)
        finally:
            await state.blocking(state.drop_session, key, limiter=state.admin_limiter)


async def _run_cells(state: ServiceState, s: _Session, req: C.RunJupyterRequest,
                     total_s: float, cell_s: float | None) -> C.RunJupyterResponse:
    marker = C.display_marker(secrets.token_hex(8))
    cells: list[C.CellRunResult] = []
    t0 = time.monotonic()
    for i, code in enumerate(req.cells):
        left = total_s - (time.monotonic() - t0)
        if left <= 0:
            return _jupyter_stop(state, "TimeLimitExceeded", f"total_timeout {total_s} s "
                                 f"reached before cell {i}", cells, t0)
        limit = left if cell_s is None else min(cell_s, left)
        res = await state.run_cell(s, C.with_display(code, marker), limit)
        if not judged(res):  # the one predicate (verimath.records.judged)
            return _jupyter_infra(state, f"cell {i}: {res.stderr.strip()}", cells)
        cells.append(C.jupyter_cell(res, marker))
        if res.status is ExecStatus.TIMEOUT:
            return _jupyter_stop(state, "TimeLimitExceeded", f"cell {i} ran out of time "
                                 f"({limit:.3g} s)", cells, t0)
        if not s.session.alive:  # the cell ended its interpreter (memory, crash, exit)
            return _jupyter_stop(state, "Finished", f"cell {i} ended the interpreter: "
                                 f"{res.status}", cells, t0)
    driver = S.CommandRunResult(status="Finished", execution_time=time.monotonic() - t0,
                                return_code=0)
    return C.RunJupyterResponse(status="Success", driver=driver, cells=cells,
                                isolation=state.sandbox.isolation)


def _jupyter_stop(state: ServiceState, run_status: Any, message: str,
                  cells: list[C.CellRunResult], t0: float) -> C.RunJupyterResponse:
    """The program stopped the notebook: Failed (judged)."""
    driver = S.CommandRunResult(status=run_status, execution_time=time.monotonic() - t0,
                                return_code=1 if run_status == "Finished" else None)
    return C.RunJupyterResponse(status="Failed", message=message, driver=driver, cells=cells,
                                isolation=state.sandbox.isolation)


def _jupyter_infra(state: ServiceState, message: str,
                   cells: list[C.CellRunResult]) -> C.RunJupyterResponse:
    """Infrastructure failure: SandboxError (could not judge; the official client raises)."""
    state.metrics.exec_status.labels(status=str(ExecStatus.SANDBOX_ERROR)).inc()
    driver = S.CommandRunResult(status="Error", stderr=message)
    return C.RunJupyterResponse(status="SandboxError", message=message, driver=driver,
                                cells=cells, isolation=state.sandbox.isolation)


def _add_nemo(app: FastAPI, state: ServiceState) -> None:
    @app.post("/execute", response_model=C.ExecuteResponse, responses=errors(400))
    async def execute(req: C.ExecuteRequest, x_session_id: str | None = Header(
            None, max_length=256, description="ipython: the session to run in")) -> Any:
        timeout, mem = _limits(state, S.capped(req, "timeout", state.cfg.max_timeout_s), None,
                               "timeout")
        lim = req.max_output_characters
        if req.language != "ipython":
            res = await state.execute(S.with_stdin(req.generated_code, req.std_input),
                                      timeout, mem)
            return C.nemo_result(res, req.language, lim, None)
        if not x_session_id:  # stateless: a fresh interpreter for this cell only
            return await _nemo_once(state, req, timeout, mem)
        key = NEMO_PREFIX + x_session_id
        s = state.sessions.get(key)
        created = s is None
        if s is None:
            try:
                s = await state.open_session(key, timeout, mem, echo=True)
            except SandboxError as e:
                res = failed(ExecStatus.SANDBOX_ERROR, f"cannot open a session: {e}",
                             state.sandbox.isolation)
                return C.nemo_result(res, "ipython", lim, True)
            if s is None:
                return busy(state, f"{len(state.sessions)} sessions open (the limit)")
        res = await state.run_cell(s, req.generated_code, timeout)
        new = created or C.fresh_interpreter(res) or not s.session.alive
        return C.nemo_result(res, "ipython", lim, new)

    @app.get("/sessions", response_model=C.SessionList, responses=errors())
    async def list_sessions() -> Any:
        now_wall, now = time.time(), time.monotonic()
        out = {k[len(NEMO_PREFIX):]: C.SessionInfo(
            backend="verimath", created=s.created, last_used=now_wall - (now - s.last_used),
            alive=bool(s.session.alive)) for k, s in list(state.sessions.items())
            if k.startswith(NEMO_PREFIX)}
        return C.SessionList(sessions=out, backend="verimath")

    @app.delete("/sessions/{sid}", response_model=C.SessionDeleted, responses=errors(404))
    async def delete_session(sid: str) -> Any:
        key = NEMO_PREFIX + sid
        if key not in state.sessions:
            raise HTTPException(404, f"session {sid!r} not found")
        await state.blocking(state.drop_session, key, limiter=state.admin_limiter)
        return C.SessionDeleted(message=f"session {sid} deleted")


async def _nemo_once(state: ServiceState, req: C.ExecuteRequest, timeout: float,
                     mem: int) -> Any:
    """An ``ipython`` cell without ``X-Session-ID``: its own interpreter, closed after."""
    key = "x-once:" + secrets.token_hex(8)
    try:
        s = await state.open_session(key, timeout, mem, echo=True)
    except SandboxError as e:
        res: ExecResult = failed(ExecStatus.SANDBOX_ERROR, f"cannot open a session: {e}",
                                 state.sandbox.isolation)
        return C.nemo_result(res, "ipython", req.max_output_characters, True)
    if s is None:
        return busy(state, f"{len(state.sessions)} sessions open (the limit)")
    try:
        res = await state.run_cell(s, req.generated_code, timeout)
    finally:
        await state.blocking(state.drop_session, key, limiter=state.admin_limiter)
    return C.nemo_result(res, "ipython", req.max_output_characters, True)
