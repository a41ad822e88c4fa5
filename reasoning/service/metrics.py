"""Prometheus metrics of ``verimath serve`` (``prometheus_client``, one registry per app)."""

from __future__ import annotations

from typing import Any

#: request latency buckets, seconds (a trivial program is ~1-5 ms through HTTP).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0)


class ServiceMetrics:
    """Counters, gauges and the latency histogram, in their own ``CollectorRegistry``.

    Names: ``verimath_requests_total{path,method,code}``,
    ``verimath_request_seconds{path}`` (histogram), ``verimath_exec_total{status}`` (per program,
    by :class:`~verimath.reasoning.sandbox.ExecStatus`), ``verimath_verdicts_total{status}``,
    ``verimath_inflight_requests``, ``verimath_queue_depth`` (programs submitted to the sandbox
    and not finished), ``verimath_sessions_open``, ``verimath_sessions_reaped_total``.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("verimath_requests", "HTTP requests by path and status code",
                                ("path", "method", "code"), registry=r)
        self.latency = Histogram("verimath_request_seconds", "HTTP request latency, seconds",
                                 ("path",), buckets=LATENCY_BUCKETS, registry=r)
        self.exec_status = Counter("verimath_exec", "programs run, by status", ("status",),
                                   registry=r)
        self.verdicts = Counter("verimath_verdicts", "pairs graded, by verdict status",
                                ("status",), registry=r)
        self.inflight = Gauge("verimath_inflight_requests", "work requests being served",
                              registry=r)
        self.queue_depth = Gauge("verimath_queue_depth",
                                 "programs submitted to the sandbox and not finished", registry=r)
        self.sessions = Gauge("verimath_sessions_open", "open sandbox sessions", registry=r)
        self.sessions_reaped = Counter("verimath_sessions_reaped", "sessions closed for idling",
                                       registry=r)

    def observe(self, path: str, method: str, code: int, seconds: float) -> None:
        """Count one request and its latency."""
        self.requests.labels(path=path, method=method, code=str(code)).inc()
        self.latency.labels(path=path).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of ``GET /metrics``."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def parse_text(text: str) -> dict[str, Any]:
    """``{"name{labels}": value}`` of a Prometheus text exposition (tests, benchmarks)."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out
