"""``verimath exec``: run Python programs in the sandbox and print JSON results.

One program (a file, or ``-`` for stdin)::

    verimath exec --timeout-s 5 --memory-mb 512 prog.py

prints one JSON object ``{"status", "stdout", "stderr", "exit_code", "wall_time_s",
"cpu_time_s", "isolation", "restarted"}`` on stdout.

A batch::

    verimath exec --batch progs.jsonl --workers 4

reads records ``{"id": str, "code": str}`` (optionally ``"timeout_s"``, ``"memory_mb"``), runs
them concurrently and prints one JSON line per record, in input order: the object above plus
``"id"``. Blank lines are skipped. A bad record (bad JSON, not an object, ``id`` or ``code``
missing or not a string, bad limits) is not run: its line has ``"status": "rejected"``, the
reason (naming the line and the field) in ``"stderr"``, ``"id"`` when it was a string else
null, and ``"line"``; the reason also goes to stderr, and the batch goes on. Each line is
flushed as soon as it and all earlier ones are done, so a killed batch loses nothing printed.
Progress and a summary (counts per status, rate) go to stderr.

Exit codes: 0 whenever the sandbox itself worked, whatever the programs did (rejected records
included); 1 when the sandbox could not start or failed (status ``sandbox_error``); 2 on a
usage error (missing file, bad flags).
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run a Python program (or a JSONL batch of them) in the sandbox; print JSON results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath exec``."""
    p.add_argument("file", nargs="?", help="program to run ('-' for stdin)")
    p.add_argument("--batch", metavar="FILE.jsonl", help="JSONL of {id, code} records")
    p.add_argument("--timeout-s", dest="timeout_s", type=float, default=10.0,
                   help="wall-clock seconds per program (default 10)")
    p.add_argument("--memory-mb", dest="memory_mb", type=int, default=1024,
                   help="address space per program on top of the warm interpreter (default 1024)")
    p.add_argument("--workers", type=int, default=None,
                   help="programs run at once (default: 1, or the CPU count with --batch)")
    p.add_argument("--isolation", choices=("auto", "bwrap", "rlimits"), default="auto",
                   help="auto: bubblewrap; the rlimits fallback only with --allow-fallback "
                        "(default auto)")
    p.add_argument("--allow-fallback", dest="allow_fallback", action="store_true", default=None,
                   help="with --isolation auto, accept the weaker rlimits fallback when "
                        "bubblewrap cannot start (default: an error, unless "
                        "$VERIMATH_SANDBOX_ALLOW_FALLBACK=1)")
    p.add_argument("--preload", default=None,
                   help="comma-separated modules imported once (default numpy,sympy; '' none)")
    p.add_argument("--max-output-bytes", dest="max_output_bytes", type=int, default=65536,
                   help="stdout+stderr kept per program (default 65536)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    """Dispatch to single-program or batch mode."""
    import os
    import sys

    if (args.file is None) == (args.batch is None):
        print("verimath exec: give a FILE (or -) or --batch FILE.jsonl", file=sys.stderr)
        return 2
    source = args.batch or args.file
    if source != "-" and not os.path.isfile(source):
        print(f"verimath exec: no such file: {source}", file=sys.stderr)
        return 2
    from verimath.reasoning.sandbox import Sandbox, SandboxConfig, SandboxError

    workers = args.workers or ((os.cpu_count() or 2) if args.batch else 1)
    preload = ("numpy", "sympy") if args.preload is None else tuple(
        m.strip() for m in args.preload.split(",") if m.strip())
    try:
        cfg = SandboxConfig(timeout_s=args.timeout_s, memory_mb=args.memory_mb,
                            workers=max(1, workers), isolation=args.isolation, preload=preload,
                            allow_fallback=args.allow_fallback,
                            max_output_bytes=args.max_output_bytes,
                            kill_output_bytes=max(8 << 20, args.max_output_bytes))
    except ValueError as e:
        print(f"verimath exec: {e}", file=sys.stderr)
        return 2
    _utf8_stdout()
    try:
        sandbox = Sandbox(cfg)
    except SandboxError as e:
        _emit({"status": "sandbox_error", "stdout": "", "stderr": f"[sandbox] {e}\n",
               "exit_code": None, "wall_time_s": 0.0, "cpu_time_s": 0.0, "isolation": "",
               "restarted": False})
        print(f"verimath exec: {e}", file=sys.stderr)
        return 1
    with sandbox:
        if args.batch:
            return run_batch(sandbox, args.batch, progress=not args.no_progress)
        return _run_one(sandbox, source)


def _utf8_stdout() -> None:
    import sys

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")


def _emit(obj: dict[str, Any]) -> None:
    import json
    import sys

    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _read_source(path: str) -> str:
    """The program text; bytes that are not UTF-8 become lone surrogates (so it is REJECTED)."""
    import sys

    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    return data.decode("utf-8", "surrogateescape")


def _run_one(sandbox: Any, path: str) -> int:
    from verimath.reasoning.sandbox import ExecStatus

    res = sandbox.run(_read_source(path))
    _emit(res.to_dict())
    return 1 if res.status is ExecStatus.SANDBOX_ERROR else 0


def parse_record(line: str, lineno: int) -> tuple[str | None, dict[str, Any] | str]:
    """(id or None, {"code", "timeout_s", "memory_mb"}) or (id or None, reason)."""
    import json

    where = f"line {lineno}"
    try:
        rec = json.loads(line)
    except ValueError as e:
        return None, f"{where}: not valid JSON ({e})"
    if not isinstance(rec, dict):
        return None, f"{where}: expected a JSON object, got {type(rec).__name__}"
    rid = rec.get("id") if isinstance(rec.get("id"), str) else None
    if rid is None:
        return None, f"{where}: field 'id': missing or not a string"
    if not isinstance(rec.get("code"), str):
        return rid, f"{where}: field 'code': missing or not a string"
    out: dict[str, Any] = {"code": rec["code"], "timeout_s": None, "memory_mb": None}
    for name, kind in (("timeout_s", (int, float)), ("memory_mb", (int,))):
        val = rec.get(name)
        if val is None:
            continue
        if isinstance(val, bool) or not isinstance(val, kind) or not val > 0:
            return rid, f"{where}: field {name!r}: expected a positive number, got {val!r}"
        out[name] = val
    return rid, out


def run_batch(sandbox: Any, path: str, progress: bool = True) -> int:
    """Run a JSONL batch; see the module docstring. Returns the exit code."""
    import sys
    import time
    from collections import Counter, deque

    from verimath.reasoning.sandbox import ExecStatus

    window = sandbox.config.workers * 8
    pending: deque[tuple[int, str | None, Any]] = deque()
    counts: Counter[str] = Counter()
    started = last = time.monotonic()
    broken = False

    def flush_done(block: bool) -> None:
        nonlocal last, broken
        while pending and (block or _ready(pending[0][2])):
            lineno, rid, item = pending.popleft()
            if isinstance(item, str):
                obj = {"id": rid, "line": lineno, "status": "rejected", "stdout": "",
                       "stderr": f"[sandbox] rejected: {item}\n", "exit_code": None,
                       "wall_time_s": 0.0, "cpu_time_s": 0.0, "isolation": sandbox.isolation,
                       "restarted": False}
            else:
                obj = {"id": rid, **item.result().to_dict()}
                broken |= obj["status"] == ExecStatus.SANDBOX_ERROR
            counts[obj["status"]] += 1
            _emit(obj)
            if progress and time.monotonic() - last > 2.0:
                last = time.monotonic()
                print(f"[exec] {sum(counts.values())} done", file=sys.stderr, flush=True)

    stream = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            rid, rec = parse_record(line, lineno)
            if isinstance(rec, str):
                print(f"verimath exec: {rec}", file=sys.stderr)
                pending.append((lineno, rid, rec))
            else:
                fut = sandbox.submit(rec["code"], timeout_s=rec["timeout_s"],
                                     memory_mb=rec["memory_mb"])
                pending.append((lineno, rid, fut))
            flush_done(block=False)
            while len(pending) >= window:
                head = pending[0][2]
                if not isinstance(head, str):
                    head.result()
                flush_done(block=False)
    flush_done(block=True)
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"[exec] {total} records in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f}/s): "
          f"{summary or 'none'}; isolation {sandbox.isolation}", file=sys.stderr, flush=True)
    return 1 if broken else 0


def _ready(item: Any) -> bool:
    return isinstance(item, str) or item.done()
