"""A :class:`verimath.prover.checker.LeanRunner` over a kimina-lean-server (``/api/check``).

kimina-lean-server (project-numina/kimina-lean-server) serves a pool of Lean REPLs over HTTP.
Its current endpoint, ``POST /api/check`` (the default here, ``KiminaConfig.api="check"``),
takes ``{"snippets": [{"id", "code"}], "timeout", "debug", "reuse", "infotree"}`` and answers
``{"results": [{"id", "time", "error", "response", "diagnostics"}]}``. The legacy ``/verify``
endpoint (``api="verify"``, what every release still serves) takes::

    {"codes": [{"custom_id": "...", "proof": "<whole Lean file>"}], "timeout": 60,
     "infotree_type": null, "disable_cache": false}

and answers ``{"results": [{"custom_id", "error", "response": {"env", "messages", "sorries",
"tactics", "infotree", "time"}}]}``; ``response`` is the REPL's own JSON (or ``{"message"}``
for a REPL-level error) and ``error`` a server-side failure (``Lean REPL command timed out in
N seconds``). The server splits the leading
``import`` lines off as the REPL header and reuses REPLs with that header.

The audit runs on top unchanged: :class:`KiminaRunner` sends ``header + setup + code`` as one
file and maps Lean's positions back to lines of ``code``. Servers differ in how they anchor
positions (relative to the file, or to the body after the split-off imports), so the runner
finds the anchor from the reference statement's own sorry warning (``setup`` always ends in
``:= sorry``) and refuses to guess when it cannot (an ERROR, never a verdict).

Transport failures and HTTP 429 / 5xx are retried with backoff; when retries run out the
check is a :class:`verimath.prover.types.LeanCrash` (could not judge: ERROR, never WRONG).

kimina-client's statuses under the could-not-judge rule (checked against the real
kimina-lean-server 2.1.3 in ``tests/prover/test_kimina_real.py``):

* ``valid`` / ``sorry`` / ``lean_error``: Lean judged the proof (the audit decides the verdict);
* ``timeout_error`` (an ``error`` with "timed out": the server's own time limit on the REPL
  command, ``Lean REPL command timed out in N seconds``; the server kills that REPL): the
  proof ran Lean out of its time, a :class:`~verimath.prover.types.LeanTimeout`: the proof's
  own failure, judged: the verdict is UNVERIFIABLE (a failed proof, reward 0.0; issue 18);
* ``repl_error`` (a REPL-level ``{"message"}`` answer such as ``Unknown environment.``) and
  ``server_error`` (any other ``error``: a REPL that died or sent no JSON, ``No available
  REPLs``, ``Failed to get REPL``): a dead REPL or server, a
  :class:`~verimath.prover.types.LeanCrash`: could not judge, never WRONG;
* the server not answering at all (connection refused, HTTP 429 / 5xx, or no answer within
  ``http_timeout_s``, our HTTP client's own limit): :class:`~verimath.prover.types.LeanCrash`,
  could not judge. An HTTP read timeout is the server's failure, not the proof's: the
  server's own limit (``timeout``) is shorter and would have answered ``timed out`` first.

The API key goes both in ``Authorization: Bearer KEY`` (what kimina-lean-server 2.x reads)
and ``X-Auth-Token`` (older deployments).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from verimath.prover.responses import (
    SORRY_WARNINGS,
    LeanMessage,
    LeanResponse,
    LeanSorry,
    parse_repl_json,
)
from verimath.prover.types import (
    LeanCrash,
    LeanTimeout,
    LeanUnavailable,
    LeanVersion,
    ProverInfraError,
)

log = logging.getLogger(__name__)
API_KEY_ENV = "KIMINA_API_KEY"
_TIMED_OUT = re.compile(r"timed? ?out", re.IGNORECASE)


@dataclass(frozen=True)
class KiminaConfig:
    """Settings of the kimina-lean-server runner.

    Attributes:
        url: server base URL (``http://host:port``); the endpoint path is appended.
        api: ``"check"`` (``POST /api/check``, current servers) or ``"verify"`` (legacy
            ``POST /verify``).
        api_key: sent as ``Authorization: Bearer`` and ``X-Auth-Token``; None reads
            ``$KIMINA_API_KEY`` (unset: no header).
        timeout_s: Lean time limit per proof, in seconds (the request's ``timeout``).
        http_timeout_s: HTTP read limit per request in seconds; None: ``timeout_s + 120``.
            Running past it is could-not-judge (:class:`~verimath.prover.types.LeanCrash`).
        batch_size: proofs per ``/verify`` request (pending checks are batched up to this).
        concurrency: requests in flight at once (also the checker's parallelism).
        retries: extra attempts after a transport error / HTTP 429 / 5xx.
        backoff_s: first retry delay in seconds (doubles per attempt).
        disable_cache: sent as ``disable_cache`` (True: fresh REPL, no header reuse).
        toolchain: the server's Lean toolchain, recorded with verdicts (None: unknown).
        mathlib_rev: the server's Mathlib revision (None: unknown).
    """

    url: str
    api: str = "check"
    api_key: str | None = None
    timeout_s: float = 120.0
    http_timeout_s: float | None = None
    batch_size: int = 8
    concurrency: int = 4
    retries: int = 3
    backoff_s: float = 1.0
    disable_cache: bool = False
    toolchain: str | None = None
    mathlib_rev: str | None = None

    def __post_init__(self) -> None:
        if self.api not in ("check", "verify"):
            raise ValueError(f"api={self.api!r}: use 'check' (/api/check) or 'verify'")
        if not re.match(r"https?://", self.url):
            raise ValueError(f"url={self.url!r}: need http(s)://host[:port]")
        if self.batch_size < 1 or self.concurrency < 1 or self.retries < 0:
            raise ValueError("batch_size and concurrency must be >= 1, retries >= 0")
        if self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("timeout_s must be > 0 and backoff_s >= 0 seconds")


@dataclass(frozen=True, slots=True)
class _Job:
    custom_id: str
    proof: str
    timeout_s: float
    future: Future[dict[str, Any]]


def leading_header_lines(text: str) -> int:
    """Lines the server splits off as its REPL header (leading ``import`` and blank lines)."""
    n = 0
    for line in text.splitlines():
        if line.strip() and not line.strip().startswith("import "):
            break
        n += 1
    return n


class KiminaRunner:
    """:class:`verimath.prover.checker.LeanRunner` over ``POST /verify`` (see module docstring).

    Args:
        config: server and limits.
        transport: optional ``httpx`` transport (tests); None uses the network.
    """

    def __init__(self, config: KiminaConfig, *, transport: Any = None) -> None:
        import httpx

        self.config = config
        key = config.api_key if config.api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}", "X-Auth-Token": key} if key else {}
        read = config.http_timeout_s or config.timeout_s + 120.0
        self._http = httpx.Client(base_url=config.url.rstrip("/"), headers=headers,
                                  timeout=httpx.Timeout(read, connect=10.0), transport=transport)
        self._lean = LeanVersion(config.toolchain or f"kimina-lean-server {config.url}",
                                 config.mathlib_rev)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._ids = itertools.count()
        self._closed = False
        self._threads = [threading.Thread(target=self._dispatch, daemon=True,
                                          name=f"kimina-{i}") for i in range(config.concurrency)]
        for t in self._threads:
            t.start()

    @property
    def lean(self) -> LeanVersion:
        """What verdicts are recorded with (``config.toolchain`` / ``mathlib_rev``)."""
        return self._lean

    @property
    def parallelism(self) -> int:
        """Checks worth running at once: every request slot with a full batch."""
        return self.config.concurrency * self.config.batch_size

    # ----------------------------------------------------------------- HTTP side
    def _dispatch(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.config.batch_size:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)  # let the other dispatchers stop too
                    break
                batch.append(nxt)
            self._send(batch)

    def _body(self, batch: list[_Job]) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) of one request in the configured API."""
        timeout = max(1, int(round(max(j.timeout_s for j in batch))))
        if self.config.api == "verify":
            return "/verify", {
                "codes": [{"custom_id": j.custom_id, "proof": j.proof} for j in batch],
                "timeout": timeout, "infotree_type": None,
                "disable_cache": self.config.disable_cache}
        return "/api/check", {
            "snippets": [{"id": j.custom_id, "code": j.proof} for j in batch],
            "timeout": timeout, "debug": False, "reuse": not self.config.disable_cache,
            "infotree": None}

    def _send(self, batch: list[_Job]) -> None:
        path, body = self._body(batch)
        try:
            results = self._post(path, body)
        except ProverInfraError as e:
            for j in batch:
                j.future.set_exception(e)
            return
        key = "custom_id" if self.config.api == "verify" else "id"
        by_id = {str(r.get(key)): r for r in results if isinstance(r, dict)}
        for j in batch:
            if j.custom_id in by_id:
                j.future.set_result(by_id[j.custom_id])
            else:
                j.future.set_exception(LeanCrash(
                    f"kimina-lean-server returned no result for {j.custom_id}"))

    def _post(self, path: str, body: dict[str, Any]) -> list[Any]:
        """``results`` of one call, with retries on transport errors / 429 / 5xx."""
        import httpx

        delay = self.config.backoff_s
        last: ProverInfraError = LeanCrash("no attempt made")
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                r = self._http.post(path, json=body)
            except httpx.TimeoutException as e:  # the server's failure, never the proof's
                last = LeanCrash(f"kimina-lean-server did not answer within the HTTP limit "
                                 f"({type(e).__name__}): could not judge")
                continue
            except httpx.TransportError as e:
                last = LeanCrash(f"kimina-lean-server unreachable: {type(e).__name__}: {e}")
                continue
            if r.status_code in (401, 403):
                raise LeanUnavailable(f"kimina-lean-server refused the API key (HTTP "
                                      f"{r.status_code}); set ${API_KEY_ENV} or --api-key")
            if r.status_code == 429 or r.status_code >= 500:
                last = LeanCrash(f"kimina-lean-server HTTP {r.status_code}: {r.text[:200]}")
                continue
            if r.status_code != 200:
                raise ProverInfraError(f"kimina-lean-server HTTP {r.status_code}: "
                                       f"{r.text[:300]}")
            try:
                results = r.json()["results"]
            except (ValueError, KeyError, TypeError) as e:
                raise LeanCrash(f"kimina-lean-server sent no 'results': {r.text[:200]}") from e
            if not isinstance(results, list):
                raise LeanCrash("kimina-lean-server 'results' is not a list")
            return results
        log.warning("kimina-lean-server: giving up after %d attempts: %s",
                    self.config.retries + 1, last)
        raise last

    # ----------------------------------------------------------------- LeanRunner side
    def verify(self, proof: str, timeout_s: float | None = None) -> dict[str, Any]:
        """One raw ``results`` entry for ``proof`` (a whole Lean file); blocks until answered.

        Raises:
            ProverInfraError: the runner is closed, or the server failed (see module docs).
        """
        if self._closed:
            raise ProverInfraError("the kimina runner is closed")
        fut: Future[dict[str, Any]] = Future()
        self._jobs.put(_Job(f"verimath-{next(self._ids)}", proof,
                            timeout_s or self.config.timeout_s, fut))
        return fut.result()

    def run(self, code: str, header: str, timeout_s: float | None = None,
            setup: str = "") -> LeanResponse:
        """Run ``header + setup + code`` on the server; positions are lines of ``code``.

        Raises:
            LeanTimeout: the server reports that Lean ran out of its time limit.
            LeanCrash: the server failed, lost the REPL, sent no usable answer, or did not
                answer within the HTTP limit.
            ProverInfraError: the header or setup does not elaborate, or positions cannot be
                anchored.
        """
        head = header.rstrip("\n") + "\n\n" if header.strip() else ""
        mid = setup.rstrip("\n") + "\n\n" if setup.strip() else ""
        proof = head + mid + code
        t0 = time.monotonic()
        result = self.verify(proof, timeout_s)
        elapsed = time.monotonic() - t0
        if result.get("error"):
            err = str(result["error"])
            raise (LeanTimeout if _TIMED_OUT.search(err) else LeanCrash)(
                f"kimina-lean-server: {err[:300]}")
        raw = result.get("response")
        if not isinstance(raw, dict):
            raise LeanCrash(f"kimina-lean-server sent no response: {str(result)[:200]}")
        raw = dict(raw)
        server_time = raw.pop("time", None)  # /verify: in the response; /api/check: beside it
        if server_time is None and isinstance(result.get("time"), int | float):
            server_time = result["time"]
        try:
            lr = parse_repl_json(raw, elapsed_s=elapsed, time_s=server_time)
        except ValueError as e:  # pydantic.ValidationError is a ValueError
            raise LeanCrash(f"kimina-lean-server: not a REPL answer: {e}") from e
        if isinstance(lr, str):
            raise LeanCrash(f"REPL error: {lr!r}")
        return _to_code_lines(lr, proof, head.count("\n"), mid.count("\n"))

    def close(self) -> None:
        """Stop the dispatchers and the HTTP client (pending checks fail as infra)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.set_exception(ProverInfraError("the kimina runner was closed"))
        self._http.close()


def _to_code_lines(lr: LeanResponse, proof: str, head_lines: int, setup_lines: int
                   ) -> LeanResponse:
    """Re-anchor positions to lines of ``code`` and drop what belongs to header / setup.

    ``proof`` is ``header (head_lines lines) + setup (setup_lines lines) + code``.

    Raises:
        ProverInfraError: an error in the header or setup, or no way to tell how the server
            anchored positions.
    """
    split = leading_header_lines(proof)
    shifts = {0, split}
    if len(shifts) > 1:
        # the setup (or, without one, the compile filter's own ``:= by sorry``) warns at its
        # first line: find which anchoring puts that warning there
        anchor = head_lines + 1
        warn = [m.line for m in lr.messages if m.text.strip() in SORRY_WARNINGS]
        found = {s for s in shifts if anchor - s in warn}
        if len(found) == 1:
            shifts = found
        elif setup_lines:
            raise ProverInfraError("cannot tell how kimina-lean-server anchored message "
                                   "positions (no sorry warning of the reference statement)")
        else:
            shifts = {0}  # no anchor and nothing pinned by line: current servers' file lines
    shift = shifts.pop()
    first = head_lines + setup_lines + 1  # file line of code's line 1

    def move(line: int) -> int:
        return line + shift - first + 1 if line > 0 else 0

    msgs: list[LeanMessage] = []
    for m in lr.messages:
        line = move(m.line)
        if m.line > 0 and line < 1:
            if m.severity == "error":
                what = "the header" if m.line + shift <= head_lines else "the statement"
                raise ProverInfraError(f"{what} does not elaborate: {m.text[:300]}")
            continue  # the reference statement's own sorry warning, header lints
        end = move(m.end_line) if m.end_line else m.end_line
        msgs.append(LeanMessage(m.severity, m.text, line, m.column, end, m.end_column))
    sorries = [LeanSorry(s.goal, s.proof_state, move(s.line), s.column,
                         move(s.end_line) if s.end_line else s.end_line, s.end_column)
               for s in lr.sorry_info if s.line == 0 or move(s.line) >= 1]
    return LeanResponse(tuple(msgs), tuple(s.goal for s in sorries), lr.elapsed_s, lr.env,
                        tuple(sorries), lr.tactics, lr.proof_status, lr.proof_state, lr.goals,
                        lr.traces, lr.infotree, lr.time_s)
