"""Grader worker process: math-verify behind a JSON-lines pipe.

Started by :class:`reasoning.grading.Grader` as ``python -m reasoning._grade_worker CONFIG``
(CONFIG is a JSON object: ``memory_mb``, ``float_rounding``, ``numeric_precision``,
``strict``). Protocol, one JSON object per line:

* worker -> parent, once at start: ``{"ready": true, "pid", "math_verify"}``;
* parent -> worker: ``{"items": [[gold, pred], ...]}`` (already extracted and cleaned answers);
* worker -> parent, one line per item as soon as it is judged, in order:
  ``{"status", "reason", "gold_parsed", "pred_parsed"}`` with status one of ``correct``,
  ``wrong``, ``bad_gold``, ``error``. The parent times each item from the previous reply.

math-verify's own ``signal.alarm`` timeouts are switched off (they would turn a hang into a
silent ``False``, and cannot interrupt C code such as big-integer powers); the parent enforces
the wall-clock limit by killing this process. An optional ``RLIMIT_AS`` keeps a runaway
expression from taking the machine's memory; running out is reported as ``error``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from itertools import product
from typing import Any

_STR_LIMIT = 200


def _short(x: object) -> str:
    """``str(x)`` cut to a few hundred characters (only called inside the parent's time limit)."""
    s = str(x)
    return s if len(s) <= _STR_LIMIT else s[: _STR_LIMIT - 3] + "..."


class _Judge:
    """Parses and compares with math-verify; one instance per worker process."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import math_verify
        from math_verify import LatexExtractionConfig, parse, verify

        # the parent kills us on a hang; math-verify's signal-based timeout is off on purpose
        for modname in ("math_verify.grader", "math_verify.parser"):
            sys.modules[modname].TIMEOUT_WARNING_SHOWN = True  # type: ignore[attr-defined]
        self.parse_fn = parse
        self.verify_fn = verify
        self.extraction = [LatexExtractionConfig(boxed_match_priority=0)]
        self.float_rounding = int(cfg.get("float_rounding", 6))
        self.numeric_precision = int(cfg.get("numeric_precision", 15))
        self.strict = bool(cfg.get("strict", True))
        self.version = getattr(math_verify, "__version__", None) or _dist_version()

    def parse(self, answer: str) -> list[Any]:
        r"""math-verify's parse of ``\boxed{answer}``: sympy objects only, no string fallback."""
        return list(
            self.parse_fn(
                "\\boxed{" + answer + "}",
                extraction_config=self.extraction,
                fallback_mode="no_fallback",
                parsing_timeout=None,  # type: ignore[arg-type]
            )
        )

    def judge(self, gold: str, pred: str) -> dict[str, Any]:
        """Parse both answers and compare every pair of parses (math-verify semantics)."""
        g = self.parse(gold)
        if not g:
            return {"status": "bad_gold", "reason": "math-verify could not parse the gold answer"}
        p = self.parse(pred)
        out: dict[str, Any] = {"gold_parsed": _short(g[0])}
        if not p:
            out.update(status="wrong", reason="prediction did not parse as math")
            return out
        out["pred_parsed"] = _short(p[0])
        errors: list[str] = []
        for gi, pi in product(g, p):
            try:
                ok = self.verify_fn(
                    gi,
                    pi,
                    float_rounding=self.float_rounding,
                    numeric_precision=self.numeric_precision,
                    strict=self.strict,
                    timeout_seconds=None,
                    raise_on_error=True,
                )
            except (MemoryError, RecursionError) as e:
                out.update(status="error", reason=f"math-verify: {type(e).__name__}")
                return out
            except Exception as e:  # noqa: BLE001 - math-verify treats these as "not equal"
                errors.append(type(e).__name__)
                continue
            if ok:
                out.update(status="correct", reason="math-verify: equivalent")
                return out
        reason = "math-verify: not equivalent"
        if errors:
            reason += f" (comparison raised {', '.join(sorted(set(errors)))})"
        out.update(status="wrong", reason=reason)
        return out


def _dist_version() -> str:
    from importlib.metadata import version

    return version("math-verify")


def _limit_memory(memory_mb: int | None) -> None:
    if not memory_mb:
        return
    import resource

    limit = int(memory_mb) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(argv: list[str]) -> int:
    """Serve requests from stdin until EOF."""
    cfg = json.loads(argv[1]) if len(argv) > 1 else {}
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    _limit_memory(cfg.get("memory_mb"))
    judge = _Judge(cfg)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "math_verify": judge.version}) + "\n")
    out.flush()
    for line in sys.stdin:
        items = json.loads(line)["items"]
        for gold, pred in items:
            out.write(json.dumps(_judge_one(judge, str(gold), str(pred))) + "\n")
            out.flush()
    return 0


def _judge_one(judge: _Judge, gold: str, pred: str) -> dict[str, Any]:
    try:
        return judge.judge(gold, pred)
    except MemoryError:
        return {"status": "error", "reason": "math-verify: MemoryError"}
    except Exception as e:  # noqa: BLE001 - reported to the parent, worker stays up
        return {"status": "error", "reason": f"grader worker: {type(e).__name__}: {e}"[:300]}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
