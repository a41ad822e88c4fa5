"""A stand-in for the Lean REPL executable that replays real REPL transcripts.

``python transcript_repl.py NAME.in ...`` reads requests on stdin exactly as the REPL does
(one JSON object, then a blank line) and answers with the recorded ``NAME.expected.out``
paragraph for that request, written byte for byte as the real REPL printed it (multi-line
JSON, then a blank line). Requests are matched by their JSON content with ``cmd`` / ``tactic``
compared up to whitespace runs; a request asked twice gets the recorded answers in order.
A request the transcripts do not hold gets ``{"message": "transcript: no answer ..."}``.

Standard library only (run with ``python -S`` for a fast start). :func:`read_transcript` is
also what the tests use to enumerate every recorded answer.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict, deque
from pathlib import Path


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks of ``text`` (without the separators)."""
    return [b.strip("\n") for b in re.split(r"\n[ \t]*\n", text) if b.strip()]


def read_transcript(path: str | Path) -> list[tuple[dict, str]]:
    """``[(request, raw answer text)]`` of ``NAME.in`` and ``NAME.expected.out``, in order.

    Raises:
        ValueError: the two files do not have the same number of paragraphs.
    """
    p = Path(path)
    requests = [json.loads(b, strict=False) for b in paragraphs(p.read_text(encoding="utf-8"))]
    out = p.with_name(p.name.removesuffix(".in") + ".expected.out")
    answers = paragraphs(out.read_text(encoding="utf-8"))
    if len(requests) != len(answers):
        raise ValueError(f"{p}: {len(requests)} requests but {len(answers)} answers")
    return list(zip(requests, answers, strict=True))


def request_key(request: dict) -> str:
    """Canonical form of a request: keys sorted, ``cmd``/``tactic`` whitespace-collapsed."""
    norm = {k: (" ".join(v.split()) if k in ("cmd", "tactic") and isinstance(v, str) else v)
            for k, v in request.items()}
    return json.dumps(norm, sort_keys=True, ensure_ascii=False)


def main(paths: list[str]) -> None:
    table: dict[str, deque[str]] = defaultdict(deque)
    for path in paths:
        for request, answer in read_transcript(path):
            table[request_key(request)].append(answer)
    buf: list[str] = []
    for line in sys.stdin:
        if line.strip():
            buf.append(line)
            continue
        if not buf:
            continue
        key = request_key(json.loads("".join(buf)))
        buf = []
        answers = table.get(key)
        if answers:
            answer = answers.popleft() if len(answers) > 1 else answers[0]
        else:
            answer = json.dumps({"message": f"transcript: no answer for {key}"})
        sys.stdout.write(answer + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
