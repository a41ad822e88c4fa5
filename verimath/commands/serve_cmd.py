"""``verimath serve``: the sandbox and the grader as an HTTP service.

::

    verimath serve --host 127.0.0.1 --port 8000 --workers 4
    verimath serve --host 0.0.0.0 --port 8000 --api-key-file /run/secrets/verimath_key

Endpoints: ``POST /run_code`` (SandboxFusion-compatible), ``POST /v1/exec``, ``POST
/v1/sessions``, ``POST /v1/sessions/{id}/run``, ``DELETE /v1/sessions/{id}``, ``POST
/v1/grade``, ``GET /health``, ``GET /metrics``; see :mod:`verimath.reasoning.service.app`. A host
that is not a loopback address needs an API key (``--api-key``, ``--api-key-file`` or
``$VERIMATH_API_KEY``); clients send ``Authorization: Bearer KEY``.

Opt-in Lean: ``--lean-project DIR`` (a Lean project with Mathlib and a built REPL, as for
``verimath prove``) adds kimina-lean-server's ``POST /api/check`` over our REPL pool and proof
audit (:mod:`verimath.prover.kimina_serve`); ``--lean-workers`` REPL processes.

SIGINT/SIGTERM: stop accepting, finish the requests in flight (up to 30 s), close sessions,
the sandbox and the grader, then end by that signal (uvicorn re-raises it: the shell sees 130
or 143). Exit codes otherwise: 1 when the sandbox or the server could not start; 2 on a usage
error (no key for a public host, unreadable key file, bad limits).
"""

from __future__ import annotations

import argparse

HELP = "serve the sandbox and grader over HTTP (SandboxFusion /run_code, /v1/exec, /v1/grade)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath serve``."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", dest="api_key", default=None,
                     help="bearer token clients must send (visible in ps: prefer --api-key-file or "
                          "$VERIMATH_API_KEY, the default when set)")
    key.add_argument("--api-key-file", dest="api_key_file", default=None,
                     help="file holding the bearer token (first line)")
    p.add_argument("--workers", type=int, default=None,
                   help="programs run at once (default: the CPU count)")
    p.add_argument("--grader-workers", dest="grader_workers", type=int, default=2,
                   help="grader worker processes (default 2)")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, default=10.0,
                   help="default wall-clock seconds per program (default 10)")
    p.add_argument("--memory-mb", dest="memory_mb", type=int, default=1024,
                   help="default address space per program, MiB (default 1024)")
    p.add_argument("--isolation", choices=("auto", "bwrap", "rlimits"), default="auto",
                   help="sandbox isolation (default auto)")
    p.add_argument("--max-inflight", dest="max_inflight", type=int, default=512,
                   help="requests served at once; more get 429 (default 512)")
    p.add_argument("--max-body-mb", dest="max_body_mb", type=float, default=16.0,
                   help="largest request body, MiB; larger get 413 (default 16)")
    p.add_argument("--session-idle-s", dest="session_idle_s", type=float, default=300.0,
                   help="close sessions unused this long (default 300)")
    p.add_argument("--lean-project", dest="lean_project", default=None,
                   help="Lean project (Mathlib, built REPL): serve kimina's /api/check on it")
    p.add_argument("--lean-workers", dest="lean_workers", type=int, default=2,
                   help="REPL processes for /api/check (default 2)")
    p.add_argument("--log-level", dest="log_level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"))


def read_api_key(api_key: str | None, api_key_file: str | None) -> str | None:
    """The key from the flag, the file (first line) or ``$VERIMATH_API_KEY``; None: no auth.

    Raises:
        OSError: the key file cannot be read. ValueError: it is empty.
    """
    import os

    if api_key_file is not None:
        with open(api_key_file, encoding="utf-8") as f:
            api_key = f.readline().strip()
        if not api_key:
            raise ValueError(f"{api_key_file}: the key file is empty")
    return api_key or os.environ.get("VERIMATH_API_KEY") or None


def run(args: argparse.Namespace) -> int:
    """Build the config and serve until SIGINT/SIGTERM."""
    import os
    import sys

    from verimath.reasoning.grading import GraderConfig
    from verimath.reasoning.sandbox import SandboxConfig, SandboxError
    from verimath.reasoning.service.app import ServeConfig, serve

    try:
        key = read_api_key(args.api_key, args.api_key_file)
        cfg = ServeConfig(
            host=args.host, port=args.port, api_key=key,
            sandbox=SandboxConfig(timeout_s=args.timeout_s, memory_mb=args.memory_mb,
                                  workers=args.workers or os.cpu_count() or 2,
                                  isolation=args.isolation),
            grader=GraderConfig(workers=args.grader_workers),
            max_inflight=args.max_inflight, max_body_bytes=int(args.max_body_mb * (1 << 20)),
            session_idle_s=args.session_idle_s)
    except (OSError, ValueError) as e:
        print(f"verimath serve: {e}", file=sys.stderr)
        return 2
    try:
        lean = _lean_service(args.lean_project, args.lean_workers)
    except Exception as e:  # noqa: BLE001 - LeanUnavailable and bad settings: one message
        print(f"verimath serve: --lean-project: {e}", file=sys.stderr)
        return 1
    try:
        serve(cfg, log_level=args.log_level, lean=lean)
    except SandboxError as e:
        print(f"verimath serve: {e}", file=sys.stderr)
        return 1
    return 0


def _lean_service(project_dir: str | None, workers: int) -> object | None:
    """The kimina ``/api/check`` service over a REPL pool on ``project_dir`` (None: not asked for).

    Raises:
        verimath.prover.types.LeanUnavailable: no Lean project / REPL (checked at once).
    """
    if project_dir is None:
        return None
    from verimath.prover.kimina_serve import KiminaCheckService
    from verimath.prover.repl import ReplConfig, ReplPool
    from verimath.prover.toolchain import require_lean

    cfg = ReplConfig(project_dir=project_dir, workers=workers)
    project = require_lean(cfg.project_dir, lake_path=cfg.lake_path)
    pool = ReplPool(cfg, project.version)
    pool.preflight()
    return KiminaCheckService(pool)
