"""A REPLAY of the real Lean REPL transcripts, run where a ``repl`` executable is expected.

This is not Lean. ``python -S lean_repl_replay.py [--log FILE] NAME.in ...`` reads commands on
stdin the way the Lean REPL does (a JSON object, then a blank line) and answers each with the
paragraph the real REPL printed for the same command in ``NAME.expected.out``
(``$VERIMATH_DATA/lean_repl``, toolchain leanprover/lean4:v4.33.0-rc2), byte for byte.

Strict, unlike the lenient ``transcript_repl.py``:

* A command matches only with the same text (up to trailing whitespace) and only in the same
  environment it was recorded in: ``{"cmd", "env": N}``
  is looked up under the chain of commands that produced environment ``N`` (in this process,
  from the answers this replay gave), so ``#check f`` after ``def f := 37`` is never answered
  after ``import Mathlib``. Only ``cmd`` commands are served (kimina-lean-server and the REPL
  pool send nothing else).
* ``gc`` (kimina-lean-server adds ``"gc": true`` to every command after the first, so the
  REPL may drop that environment afterwards) is not part of the match: the transcripts were
  recorded without it and it does not change what Lean reports about the command.
* Anything else fails loudly: the replay writes ``lean_repl_replay: NOT RECORDED: ...`` to
  stderr and to ``--log``, and exits with status 3 without answering, so the caller sees a
  dead REPL (never a made-up answer).

``--delay-s S`` answers every command S seconds late (still the recorded answer): a slow Lean,
for the server's own time limit. Every request (answered or not) is appended to ``--log`` as
one JSON line ``{"request": ..., "answered": bool}``, so tests can assert what a server sent.
Standard library only (fast under ``python -S``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcript_repl import read_transcript  # noqa: E402 - after the path set-up above

NOT_RECORDED_EXIT = 3
Chain = tuple[str, ...]


def canon(request: dict) -> str:
    """A command without ``env`` / ``gc``, keys sorted, trailing whitespace off ``cmd``.

    Nothing else is normalized: Lean's answer depends on line breaks and indentation
    (``by\nsorry`` is an error where ``by sorry`` is not; positions move with every space).
    """
    norm = {k: (v.rstrip() if k == "cmd" and isinstance(v, str) else v)
            for k, v in request.items() if k not in ("env", "gc")}
    return json.dumps(norm, sort_keys=True, ensure_ascii=False)


def build_table(paths: list[str]) -> dict[tuple[Chain, str], str]:
    """``{(chain of the env, command): recorded answer}`` over every ``cmd`` in ``paths``.

    The first recording of a (chain, command) pair wins; later transcripts that recorded the
    same command in the same environment recorded the same Lean answer.
    """
    table: dict[tuple[Chain, str], str] = {}
    for path in paths:
        envs: dict[int, Chain] = {}
        for request, answer in read_transcript(path):
            if "cmd" not in request:
                continue  # tactic / pickle commands: not served (see module docstring)
            env = request.get("env")
            if env is not None and env not in envs:
                continue  # an environment this transcript made outside `cmd`: not served
            chain = envs[env] if env is not None else ()
            key = (chain, canon(request))
            table.setdefault(key, answer)
            produced = json.loads(answer, strict=False).get("env")
            if isinstance(produced, int):
                envs[produced] = (*chain, key[1])
    return table


def _fail(log, request: object, why: str) -> None:
    msg = f"lean_repl_replay: NOT RECORDED: {why}: {json.dumps(request, ensure_ascii=False)}"
    if log is not None:
        log.write(json.dumps({"request": request, "answered": False, "why": why}) + "\n")
        log.flush()
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    sys.exit(NOT_RECORDED_EXIT)


def serve(table: dict[tuple[Chain, str], str], stdin, stdout, log, delay_s: float = 0.0
          ) -> None:
    """Answer commands from ``stdin`` until EOF (or exit 3 on an unrecorded one)."""
    envs: dict[int, Chain] = {}
    buf: list[str] = []
    for line in stdin:
        if line.strip():
            buf.append(line)
            continue
        if not buf:
            continue
        request = json.loads("".join(buf), strict=False)
        buf = []
        if not isinstance(request, dict) or "cmd" not in request:
            _fail(log, request, "only `cmd` commands are replayed")
        env = request.get("env")
        if env is not None and env not in envs:
            _fail(log, request, f"env {env} was not made by this replay")
        chain = envs[env] if env is not None else ()
        answer = table.get((chain, canon(request)))
        if answer is None:
            _fail(log, request, "no transcript holds this command in this environment")
        produced = json.loads(answer, strict=False).get("env")
        if isinstance(produced, int):
            new = (*chain, canon(request))
            if envs.get(produced, new) != new:
                _fail(log, request, f"the recorded answer reuses env {produced}")
            envs[produced] = new
        if log is not None:
            log.write(json.dumps({"request": request, "answered": True}) + "\n")
            log.flush()
        if delay_s:
            time.sleep(delay_s)
        stdout.write(answer + "\n\n")
        stdout.flush()


def main(argv: list[str]) -> None:
    """Command line: ``[--log FILE] [--delay-s S] NAME.in ...``."""
    log_path, delay_s = None, 0.0
    while argv[:1] in (["--log"], ["--delay-s"]):
        if argv[0] == "--log":
            log_path = argv[1]
        else:
            delay_s = float(argv[1])
        argv = argv[2:]
    log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    try:
        serve(build_table(argv), sys.stdin, sys.stdout, log, delay_s)
    finally:
        if log is not None:
            log.close()


if __name__ == "__main__":
    main(sys.argv[1:])
