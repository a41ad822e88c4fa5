"""The REAL kimina-lean-server (PyPI ``kimina-ast-server``) on 127.0.0.1, Lean replaced by a replay.

What is real: the server's own code (FastAPI app, REPL manager, header split, ``lake env
<repl>`` process start, the REPL stdin/stdout protocol, timeouts, ``/api/check`` and
``/verify``), installed from PyPI into its own venv under ``<checkout>/.cache/kimina-venv``
(built once per machine by :func:`kimina_venv`).

What is not, each labelled where it is made:

* REPLAY: ``repl/.lake/build/bin/repl`` runs ``lean_repl_replay.py``, which answers only what
  the real Lean REPL transcripts recorded and exits (a dead REPL) on anything else.
* SHIM ``lake``: a ``lake`` on PATH whose ``env`` runs its arguments (no toolchain here).
* SHIM ``sitecustomize.py``: ``typing.TypedDict`` := ``typing_extensions.TypedDict`` (pydantic
  refuses the former on Python < 3.12 and kimina's models use it).
* SHIM ``prisma``: a stand-in for the generated database client (generating the real one
  downloads a binary; the server uses it only with ``LEAN_SERVER_DATABASE_URL``, never set here).
* SHIM ``ast_export``: an executable that refuses to run (the settings require it to exist;
  the AST endpoints are not tested).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPLAY = Path(__file__).with_name("lean_repl_replay.py")
#: what the kimina venv holds; newer FastAPI rejects kimina 2.1.3's ``FastAPI(logger=...)``
KIMINA_SPECS = ("kimina-ast-server==2.1.3", "fastapi<0.116")

#: SHIM (test only): pydantic refuses ``typing.TypedDict`` on Python < 3.12; kimina's models
#: (``kimina_client.models``) use it. Applied in the server through ``sitecustomize`` and in
#: the test process by :func:`apply_typeddict_shim`.
SITECUSTOMIZE_SHIM = '''\
# SHIM (verimath tests): pydantic refuses typing.TypedDict on Python < 3.12; kimina uses it.
import typing

import typing_extensions

typing.TypedDict = typing_extensions.TypedDict
'''

#: SHIM (test only): stands in for the generated Prisma client.
PRISMA_SHIM = '''\
"""SHIM (verimath tests): stands in for the generated Prisma database client.

kimina-lean-server uses it only when LEAN_SERVER_DATABASE_URL is set; the tests never set it.
"""


class Prisma:
    def is_connected(self):
        return False

    async def connect(self):
        raise RuntimeError("prisma shim: no database in the verimath tests")

    async def disconnect(self):
        return None
'''

#: SHIM (test only): ``lake`` without a toolchain: ``lake env CMD ARGS`` runs ``CMD ARGS``.
LAKE_SHIM = '''#!/bin/sh
# SHIM (verimath tests): no Lean toolchain here; `lake env CMD ARGS...` runs CMD ARGS.
if [ "$1" = "env" ]; then shift; exec "$@"; fi
echo "lake shim: only 'lake env' is served" >&2
exit 2
'''

AST_EXPORT_SHIM = '''#!/bin/sh
# SHIM (verimath tests): the settings require ast-export to exist; it is never run here.
echo "ast-export shim: not available in the verimath tests" >&2
exit 2
'''


def apply_typeddict_shim() -> None:
    """SHIM (test only): the TypedDict replacement, in this process, before kimina_client."""
    import typing

    import typing_extensions

    if sys.version_info < (3, 12):
        typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


def _venv_versions(python: Path) -> str | None:
    code = ("from importlib.metadata import version as v; "
            "print(v('kimina-ast-server'), v('fastapi'))")
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def kimina_venv(root: Path = ROOT) -> Path:
    """The kimina venv's python, building ``<root>/.cache/kimina-venv`` the first time.

    Fails the test (not a skip) if PyPI is reachable and the install still fails; skips only
    when PyPI cannot be reached (the package truly cannot be installed here).
    """
    venv = root / ".cache" / "kimina-venv"
    python = venv / "bin" / "python"
    stamp = venv / "verimath-kimina.json"
    want = json.dumps(list(KIMINA_SPECS))
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "kimina-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build even with parallel test processes
        if stamp.is_file() and stamp.read_text() == want and python.exists():
            return python
        if python.exists() and (got := _venv_versions(python)):
            if got.split()[0] == "2.1.3" and got.split()[1].startswith("0.115"):
                stamp.write_text(want)
                return python
        if not _pypi_reachable():
            pytest.skip("kimina-ast-server cannot be installed: PyPI (pypi.org:443) is "
                        "unreachable from this machine, and no kimina venv is built")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", *KIMINA_SPECS],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            pytest.fail(f"PyPI is reachable but `pip install {' '.join(KIMINA_SPECS)}` failed "
                        f"in {venv}:\n{r.stderr[-3000:]}")
        stamp.write_text(want)
        return python


def _exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def make_workspace(where: Path, transcripts: list[Path], log: Path, *,
                   delay_s: float = 0.0) -> Path:
    """A ``LEAN_SERVER_WORKSPACE`` whose ``repl`` is the REPLAY of ``transcripts``.

    Layout: ``repl/.lake/build/bin/repl`` (REPLAY), ``mathlib4/`` (the project dir, empty),
    ``ast_export/.lake/build/bin/ast-export`` (SHIM), ``bin/lake`` (SHIM; put it on PATH).
    Every request the replay sees goes to ``log`` (JSON lines); ``delay_s`` makes it answer
    that late (a slow Lean).
    """
    argv = " ".join(f"'{p}'" for p in [sys.executable, "-S", REPLAY, "--log", log,
                                         "--delay-s", delay_s, *transcripts])
    _exe(where / "repl/.lake/build/bin/repl",
         f"#!/bin/sh\n# REPLAY (not Lean) of the recorded Lean REPL transcripts\nexec {argv}\n")
    (where / "mathlib4").mkdir(parents=True, exist_ok=True)
    _exe(where / "ast_export/.lake/build/bin/ast-export", AST_EXPORT_SHIM)
    _exe(where / "bin/lake", LAKE_SHIM)
    return where


def _shims(where: Path) -> Path:
    (where / "prisma").mkdir(parents=True, exist_ok=True)
    (where / "sitecustomize.py").write_text(SITECUSTOMIZE_SHIM)
    (where / "prisma" / "__init__.py").write_text(PRISMA_SHIM)
    return where


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KiminaServer:
    """The real kimina-lean-server process (context manager); ``url``, ``log_lines()``.

    Args:
        python: the kimina venv's python (:func:`kimina_venv`).
        workspace: from :func:`make_workspace`.
        replay_log: the replay's request log.
        settings: extra ``LEAN_SERVER_*`` settings (names without the prefix).
    """

    def __init__(self, python: Path, workspace: Path, replay_log: Path,
                 **settings: Any) -> None:
        self.python, self.workspace, self.replay_log = python, workspace, replay_log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        shims = _shims(workspace / "shims")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEAN_SERVER_")}
        self.env.update({
            "PATH": f"{workspace / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(shims), "LEAN_SERVER_WORKSPACE": str(workspace),
            "LEAN_SERVER_HOST": "127.0.0.1", "LEAN_SERVER_PORT": str(self.port),
            "LEAN_SERVER_LOG_LEVEL": "WARNING", "LEAN_SERVER_MAX_REPL_MEM": "2G",
            "LEAN_SERVER_MAX_REPLS": "2", "NO_COLOR": "1", "TERM": "dumb"})
        self.env.update({f"LEAN_SERVER_{k.upper()}": str(v) for k, v in settings.items()})
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = workspace / "server.log"

    def __enter__(self) -> KiminaServer:
        import httpx

        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen([str(self.python), "-m", "server"], cwd=self.workspace,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kimina-lean-server exited ({self.proc.returncode}):\n"
                                   f"{self.out.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("kimina-lean-server did not answer /health in 90 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def replay_requests(self) -> list[dict[str, Any]]:
        """Every request the REPL replay received so far (``{"request", "answered"}``)."""
        if not self.replay_log.is_file():
            return []
        return [json.loads(line) for line in self.replay_log.read_text().splitlines() if line]
