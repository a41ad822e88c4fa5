"""Clients nobody here wrote, against a live ``verimath serve`` on 127.0.0.1 (issue 20).

* the official SandboxFusion client (PyPI ``sandbox-fusion``): ``run_code`` and ``run_jupyter``;
* NeMo-Skills' sandbox protocol: requests built as its ``LocalSandbox`` client builds them
  (``requests`` session, ``json.dumps`` body, ``X-Session-ID`` header for ipython sessions).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import requests

from tests.reasoning.serve_util import ThreadServer, free_port
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.reasoning.service.app import ServeConfig

sf = pytest.importorskip("sandbox_fusion")  # a dev dependency: absent only off `make install`


@pytest.fixture(scope="module")
def srv():
    box = Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=2))
    # the official clients send no API key: a loopback server without one
    cfg = ServeConfig(port=free_port(), sandbox=box.config, max_sessions=8, max_timeout_s=60)
    with ThreadServer(cfg, sandbox=box) as s:
        yield s
    box.close()


# ------------------------------------------------------------------ SandboxFusion run_code


@pytest.mark.parametrize(
    "code,stdin,timeout,summary,rc,stdout",
    [
        ("print('hello')", None, 10, "Success", 0, "hello\n"),
        ("print(input()[::-1])", "abc\n", 10, "Success", 0, "cba\n"),
        ("1/0", None, 10, "RunFailed", 1, ""),
        ("import time\ntime.sleep(30)", None, 0.5, "RunTimeout", None, ""),
    ],
)
def test_sandboxfusion_client_run_code(srv, code, stdin, timeout, summary, rc, stdout) -> None:
    req = sf.RunCodeRequest(code=code, language="python", stdin=stdin, run_timeout=timeout)
    resp = sf.run_code(req, endpoint=srv.url, max_attempts=1)
    mapping = sf.SummaryMapping(Success="Success", Failed="Failed", RunFailed="RunFailed",
                                RunTimeout="RunTimeout")
    if summary != "RunTimeout":
        assert resp.run_result.return_code == rc
    assert sf.summary_run_code_result(resp, mapping) == summary
    assert resp.run_result.stdout == stdout


# --------------------------------------------------------------- SandboxFusion run_jupyter


def test_sandboxfusion_client_run_jupyter_one_kernel(srv) -> None:
    cells = ["a = 123", "a", "print(a)", "import sys; sys.stderr.write('stderr message')",
             "raise RuntimeError('error message')", "b = a + 1\nb  # shown", "None",
             "print('after the error', b)"]
    resp = sf.run_jupyter(sf.RunJupyterRequest(cells=cells), endpoint=srv.url, max_attempts=1)
    assert resp.status == sf.RunStatus.Success and resp.driver.status == "Finished"
    out = resp.cells
    assert len(out) == len(cells)
    assert out[0].stdout == "" and out[0].display == [] and out[0].error == []
    assert out[1].display == [{"text/plain": "123"}] and out[1].stdout == ""
    assert out[2].stdout == "123\n" and out[2].display == []
    assert out[3].stderr == "stderr message"
    err = out[4].error
    assert [(e["ename"], e["evalue"]) for e in err] == [("RuntimeError", "error message")]
    assert any("Traceback" in line for line in err[0]["traceback"])
    assert out[5].display == [{"text/plain": "124"}]
    assert out[6].display == []  # None is not displayed, as in Jupyter
    assert out[7].stdout == "after the error 124\n" and out[7].error == []


def test_run_jupyter_is_stateless_across_requests(srv) -> None:
    sf.run_jupyter(sf.RunJupyterRequest(cells=["secret = 1"]), endpoint=srv.url,
                   max_attempts=1)
    resp = sf.run_jupyter(sf.RunJupyterRequest(cells=["secret"]), endpoint=srv.url,
                          max_attempts=1)
    assert resp.cells[0].error[0]["ename"] == "NameError"
    assert not any(k.startswith("jupyter:") for k in srv.state.sessions)  # all closed


@pytest.mark.parametrize(
    "cells,cell_timeout,total_timeout,n_cells,driver",
    [
        (["x = 1", "import time; time.sleep(30)", "print(x)"], 0.5, 45, 2, "TimeLimitExceeded"),
        (["import time; time.sleep(0.4)"] * 4, 0, 1.0, 3, "TimeLimitExceeded"),
        (["import os; os._exit(3)", "print(1)"], 0, 45, 1, "Finished"),
    ],
)
def test_run_jupyter_program_failures_are_failed_not_sandbox_error(
        srv, cells, cell_timeout, total_timeout, n_cells, driver) -> None:
    req = sf.RunJupyterRequest(cells=cells, cell_timeout=cell_timeout,
                               total_timeout=total_timeout)
    resp = sf.run_jupyter(req, endpoint=srv.url, max_attempts=1)  # does not raise: judged
    assert resp.status == sf.RunStatus.Failed, resp
    assert resp.driver.status == driver and len(resp.cells) <= n_cells
    assert resp.message


def test_run_jupyter_bad_requests_name_the_field(srv) -> None:
    for body, field in [({"cells": "print(1)"}, "cells"), ({"cells": [], "kernel": "ir"}, "kernel"),
                        ({"cells": [], "total_timeout": False}, "total_timeout"),
                        ({"cells": [], "cell_timeout": -1}, "cell_timeout"),
                        ({"cells": [], "files": {"a": "eA=="}}, "files")]:
        r = httpx.post(srv.url + "/run_jupyter", json=body)
        assert r.status_code == 422 and field in r.text, (body, r.text)
    r = httpx.post(srv.url + "/run_jupyter", json={"cells": [], "total_timeout": 61})
    assert r.status_code == 400 and "limit" in r.text


# ----------------------------------------------------------------------- NeMo-Skills


class NemoClient:
    """Requests as NeMo-Skills' ``LocalSandbox`` builds them (``_prepare_request`` fields,
    ``json.dumps`` body, ``Content-Type`` and ``X-Session-ID`` headers, one ``requests``
    session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def execute(self, code: str, *, language: str = "ipython", timeout: float = 10.0,
                max_output_characters: int = 1000, session_id: str | None = None,
                std_input: str = "", traceback_verbosity: str = "plain") -> dict:
        request = {"generated_code": code, "timeout": timeout, "language": language,
                   "max_output_characters": max_output_characters,
                   "traceback_verbosity": traceback_verbosity.capitalize(),
                   "std_input": std_input}
        headers = {"Content-Type": "application/json"}
        if session_id is not None:
            headers["X-Session-ID"] = str(session_id)
        out = self.http.post(self.url + "/execute", data=json.dumps(request), timeout=timeout + 30,
                             headers=headers)
        assert out.status_code == 200, out.text
        return out.json()


def test_nemo_ipython_session_keeps_state_and_lists(srv) -> None:
    nemo, sid = NemoClient(srv.url), str(uuid.uuid4())
    r1 = nemo.execute("x = 40", session_id=sid)
    assert r1["process_status"] == "completed" and r1["new_session_created"] is True
    r2 = nemo.execute("x + 2", session_id=sid)
    assert (r2["process_status"], r2["stdout"], r2["new_session_created"]) == (
        "completed", "42\n", False)
    r3 = nemo.execute("undefined_name", session_id=sid)
    assert r3["process_status"] == "error" and "NameError" in r3["stderr"]
    assert r3["could_not_judge"] is False
    listed = nemo.http.get(srv.url + "/sessions").json()
    assert sid in listed["sessions"] and listed["sessions"][sid]["alive"] is True
    assert nemo.http.delete(srv.url + f"/sessions/{sid}").status_code == 200
    assert sid not in nemo.http.get(srv.url + "/sessions").json()["sessions"]
    assert nemo.http.delete(srv.url + f"/sessions/{sid}").status_code == 404
    r4 = nemo.execute("x", session_id=sid)  # the id again: a new, empty session
    assert r4["new_session_created"] is True and r4["process_status"] == "error"


def test_nemo_timeout_restarts_the_session_and_says_so(srv) -> None:
    nemo, sid = NemoClient(srv.url), str(uuid.uuid4())
    nemo.execute("keep = 1", session_id=sid)
    r = nemo.execute("import time; time.sleep(30)", session_id=sid, timeout=0.5)
    assert r["process_status"] == "timeout" and r["new_session_created"] is True
    assert r["could_not_judge"] is False  # the program's own timeout is judged
    after = nemo.execute("print('keep' in globals())", session_id=sid)
    assert after["new_session_created"] is True and after["stdout"].endswith("False\n")
    assert nemo.execute("1", session_id=sid)["new_session_created"] is False


def test_nemo_sessions_are_separate_and_stateless_without_header(srv) -> None:
    nemo = NemoClient(srv.url)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    nemo.execute("v = 'a'", session_id=a)
    nemo.execute("v = 'b'", session_id=b)
    assert nemo.execute("v", session_id=a)["stdout"] == "'a'\n"
    once = nemo.execute("y = 5\ny")
    assert once["stdout"] == "5\n" and once["new_session_created"] is True
    assert nemo.execute("y")["process_status"] == "error"


@pytest.mark.parametrize(
    "code,language,std_input,status,stdout",
    [
        ("print(input() * 2)", "python", "ab\n", "completed", "abab\n"),
        ("import sys; sys.exit(3)", "python", "", "completed", ""),  # NeMo: any exit code
        ("import time; time.sleep(30)", "python", "", "timeout", ""),
    ],
)
def test_nemo_python_programs(srv, code, language, std_input, status, stdout) -> None:
    r = NemoClient(srv.url).execute(code, language=language, std_input=std_input, timeout=0.5
                                    if "sleep" in code else 10)
    assert (r["process_status"], r["stdout"]) == (status, stdout)
    assert r["new_session_created"] is None and r["could_not_judge"] is False


def test_nemo_output_is_cut_and_marked(srv) -> None:
    r = NemoClient(srv.url).execute("print('x' * 5000)", language="python",
                                    max_output_characters=100)
    assert r["stdout"] == "x" * 100 + "<output cut>"


def test_nemo_bad_requests_name_the_field(srv) -> None:
    for body, field in [({"timeout": 1}, "generated_code"),
                        ({"generated_code": "1", "timeout": False}, "timeout"),
                        ({"generated_code": "1", "language": "lean4"}, "language"),
                        ({"generated_code": "1", "max_output_characters": "9"},
                         "max_output_characters")]:
        r = httpx.post(srv.url + "/execute", json=body)
        assert r.status_code == 422 and field in r.text, (body, r.text)


# ------------------------------------------------------- infrastructure: could not judge


def test_broken_sandbox_is_sandbox_error_in_both_formats() -> None:
    box = Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=1))
    cfg = ServeConfig(port=free_port(), sandbox=box.config)
    with ThreadServer(cfg, sandbox=box) as s:
        box.close()  # the sandbox is gone: nothing can run, through no program's fault
        with pytest.raises(Exception, match="Sandbox responded with error"):
            sf.run_jupyter(sf.RunJupyterRequest(cells=["1"]), endpoint=s.url, max_attempts=1)
        with pytest.raises(Exception, match="Sandbox responded with error"):
            sf.run_code(sf.RunCodeRequest(code="1", language="python"), endpoint=s.url,
                        max_attempts=1)
        nemo = NemoClient(s.url)
        for kw in ({"session_id": "s1"}, {}, {"language": "python"}):
            r = nemo.execute("1", **kw)
            assert r["process_status"] == "sandbox_error" and r["could_not_judge"] is True
