"""``verimath serve``'s API contract: schemathesis over its OpenAPI, and the strictness rows.

The schemathesis run is bounded (``--max-examples``, a fixed seed, a server whose limits keep
every program under a second) and covers every operation with ``--checks all``: undeclared
statuses, schema-violating requests accepted, valid ones rejected, response shapes and
content types. Zero failures is the bar.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.reasoning.serve_util import ThreadServer, free_port
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.reasoning.service.app import ServeConfig


@pytest.fixture(scope="module")
def srv():
    box = Sandbox(SandboxConfig(timeout_s=1.0, memory_mb=256, workers=2))
    cfg = ServeConfig(port=free_port(), sandbox=box.config, max_timeout_s=1.0,
                      max_memory_mb=512, max_batch=4, max_sessions=4, session_idle_s=1.0,
                      max_body_bytes=64 << 10)
    with ThreadServer(cfg, sandbox=box) as s:
        yield s
    box.close()


def _schemathesis() -> str:
    exe = Path(sys.executable).parent / "schemathesis"
    found = str(exe) if exe.exists() else shutil.which("schemathesis")
    if found is None:
        pytest.skip("schemathesis is not installed (a dev dependency: make install)")
    return found


def run_schemathesis(url: str, cwd: Path, *args: str) -> str:
    """``schemathesis run`` (``--checks all``, a fixed seed) over ``url``'s OpenAPI; asserts
    zero failures and returns the report. ``args`` come last (``--max-examples N``, ...)."""
    cmd = [_schemathesis(), "run", f"{url}/openapi.json", "--checks", "all",
           "--max-examples", "20", "--seed", "20", "--no-color", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd,
                         env={"PATH": str(Path(sys.executable).parent), "HOME": "/tmp",
                              "SCHEMATHESIS_TELEMETRY": "false"})
    report = out.stdout + out.stderr
    (cwd / "schemathesis.log").write_text(report)
    assert out.returncode == 0, report[-6000:]
    assert "passed" in report and "failure" not in report.split("SUMMARY")[-1], report[-3000:]
    return report


def test_schemathesis_finds_no_contract_failures(srv, tmp_path) -> None:
    run_schemathesis(srv.url, tmp_path)


@pytest.mark.parametrize(
    "path,body,field",
    [  # the coercions schemathesis found before issue 20, one row each
        ("/run_code", {"code": "1", "memory_limit_MB": False}, "memory_limit_MB"),
        ("/v1/grade", {"pairs": [], "extract": 0}, "extract"),
        ("/v1/sessions", {"echo": 0}, "echo"),
        ("/v1/sessions", {"timeout_s": 5e-324}, "timeout_s"),
        ("/v1/sessions", {"timeout_s": 1e400}, "timeout_s"),  # inf
        ("/v1/exec", {"requests": [{"code": "1", "memory_mb": 1.5}]}, "memory_mb"),
        ("/v1/exec", {"requests": [{"code": "1", "timeout_s": True}]}, "timeout_s"),
        ("/v1/sessions/x/run", {"code": 5}, "code"),
        ("/execute", {"generated_code": "1", "std_input": None}, "std_input"),
    ],
)
def test_wrong_types_are_422_naming_the_field(srv, path, body, field) -> None:
    import json

    r = httpx.post(srv.url + path, content=json.dumps(body).replace("Infinity", "1e400"),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(field in d["loc"] for d in r.json()["detail"]), r.text


def test_integral_floats_are_integers(srv) -> None:
    r = httpx.post(srv.url + "/v1/exec", json={"requests": [{"code": "1", "memory_mb": 256.0}]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "ok"


def test_openapi_declares_statuses_limits_and_metrics_type(srv) -> None:
    spec = httpx.get(srv.url + "/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            need = {"413", "503"} if path == "/health" else {"401", "413", "429"}
            assert need <= set(op["responses"]), (method, path)
    run = spec["paths"]["/run_code"]["post"]["responses"]
    assert {"200", "400", "422"} <= set(run)
    assert set(spec["paths"]["/v1/sessions/{sid}/run"]["post"]["responses"]) >= {"404"}
    assert "503" in spec["paths"]["/health"]["get"]["responses"]
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert httpx.get(srv.url + "/metrics").headers["content-type"] in metrics
    comp = spec["components"]["schemas"]
    assert comp["RunCodeRequest"]["properties"]["run_timeout"]["maximum"] == 1.0
    assert comp["RunCodeRequest"]["properties"]["run_timeout"]["default"] == 1.0  # capped
    assert comp["ExecBatch"]["properties"]["requests"]["maxItems"] == 4
