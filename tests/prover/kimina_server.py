"""A kimina-lean-server stand-in on 127.0.0.1 for the kimina backend tests.

It speaks the real wire formats (``POST /api/check`` with ``snippets`` [{``id``, ``code``}] /
``timeout`` / ``debug`` / ``reuse`` / ``infotree``, answer ``{"results": [{"id", "time",
"error", "response", "diagnostics"}]}``; legacy ``POST /verify`` with ``codes`` / ``timeout`` /
``infotree_type`` / ``disable_cache``, answer ``{"results": [{"custom_id", "error",
"response"}]}``; ``X-Auth-Token``), splits each file's leading imports off like the real server,
and answers the body with a caller-supplied ``answer(header, body) -> REPL JSON | error``.
``anchor="file"`` shifts positions back to file lines (current servers), ``"body"`` leaves them
relative to the body (older servers).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``(header, body) -> REPL JSON``, an ``error`` string, or an HTTP status for the whole request.
Answer = Callable[[str, str], "dict[str, Any] | str | int"]


def split_snippet(code: str) -> tuple[str, str, int]:
    """``(header, body, header_line_count)`` the way kimina-lean-server splits a file."""
    lines = code.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("import ")):
        i += 1
    header = "\n".join(x.strip() for x in lines[:i] if x.strip())
    return header, "\n".join(lines[i:]), i


def shift_lines(resp: dict[str, Any], by: int) -> dict[str, Any]:
    """A copy of a REPL answer with every ``pos`` / ``endPos`` line moved by ``by``."""
    out = copy.deepcopy(resp)
    for key in ("messages", "sorries"):
        for item in out.get(key, []):
            for p in ("pos", "endPos"):
                if item.get(p) and item[p]["line"] > 0:
                    item[p]["line"] += by
    return out


class KiminaStandIn:
    """The server; use as a context manager. ``requests`` holds every request body seen."""

    def __init__(self, answer: Answer, *, anchor: str = "file", api_key: str | None = None,
                 fail_first: int = 0) -> None:
        self.answer = answer
        self.anchor = anchor
        self.api_key = api_key
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                status, payload = outer.handle(self.path, dict(self.headers),
                                               self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path not in ("/verify", "/api/check"):
            return 404, {"detail": "Not Found"}
        if self.api_key is not None and headers.get("X-Auth-Token") != self.api_key:
            return 401, {"detail": "Invalid API key"}
        body = json.loads(raw)
        with self.lock:
            self.requests.append(body)
            if self.fail_first > 0:
                self.fail_first -= 1
                return 503, {"detail": "No available REPLs"}
        check = path == "/api/check"
        if check:
            assert set(body) == {"snippets", "timeout", "debug", "reuse", "infotree"}, body
            items = [(s["id"], s["code"]) for s in body["snippets"]]
        else:
            assert set(body) == {"codes", "timeout", "infotree_type", "disable_cache"}, body
            items = [(c["custom_id"], c["proof"]) for c in body["codes"]]
        results = []
        for cid, code in items:
            header, text, n_header = split_snippet(code)
            got = self.answer(header, text)
            if isinstance(got, int):
                return got, {"detail": "Internal Server Error"}
            if not isinstance(got, str) and self.anchor == "file" and "message" not in got:
                got = shift_lines(got, n_header)
            err, resp = (got, None) if isinstance(got, str) else (None, got)
            if check:  # time beside the response, plus kimina's diagnostics
                results.append({"id": cid, "time": 0.25, "error": err, "response": resp,
                                "diagnostics": {"repl_uuid": "stand-in"}})
            else:
                results.append({"custom_id": cid, "error": err,
                                "response": None if resp is None else {**resp, "time": 0.25}})
        return 200, {"results": results}

    def __enter__(self) -> KiminaStandIn:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def audit_answer(case: dict[str, Any]) -> Any:
    """An ``answer`` for a case of fixtures/repl_audit.json: what a REPL says to
    ``header body + setup + command`` sent as one command (the case's recorded answer moved to
    the command's lines, plus the reference statement's sorry warning)."""
    from tests.prover.conftest import setup_answer

    def answer(header: str, body: str) -> Any:
        assert header == "import Mathlib\nimport Aesop"
        command = case["command"].rstrip("\n")
        assert body.endswith(command) and case["setup"].strip() in body
        if case.get("raises") == "TimeoutError":
            return "Lean REPL command timed out in 120 seconds"
        if case.get("raises"):
            return 500
        at_cmd = body[:body.rindex(command)].count("\n")
        at_setup = body[:body.index(case["setup"].strip())].count("\n")
        resp = case["response"]
        if set(resp) == {"message"}:
            return resp
        out = shift_lines(resp, at_cmd)
        ref = shift_lines(setup_answer(case["setup"]), at_setup)
        out["messages"] = ref["messages"] + out.get("messages", [])
        out["sorries"] = ref["sorries"] + out.get("sorries", [])
        return out

    return answer
