r"""Grader worker process: math-verify behind a JSON-lines pipe.

Started by :class:`verimath.reasoning.grading.Grader` as ``python -m
verimath.reasoning._grade_worker CONFIG`` (CONFIG is a JSON object: ``memory_mb``,
``float_rounding``, ``numeric_precision``, ``strict``, ``allow_set_relation_comp``). Protocol, one
JSON object per line:

* worker -> parent, once at start: ``{"ready": true, "pid", "math_verify"}``, or
  ``{"ready": false, "error"}`` when the installed math-verify fails a known-false-positive
  check (:data:`KNOWN_FALSE_POSITIVES`, e.g. ``1-\frac{1}{e}`` vs ``1+\frac{1}{e}``);
* parent -> worker: ``{"items": [[gold, pred, gold_raw, pred_raw], ...]}``: ``gold``/``pred``
  are our extracted, cleaned answers; ``gold_raw``/``pred_raw`` the raw texts (a whole
  solution) or null. A raw text goes through math-verify's own extraction (``parse`` with its
  LaTeX and expression configs, boxed answers first), whose candidates come *before* ours:
  whatever math-verify alone would call equivalent on the raw texts, we call equivalent too;
* worker -> parent, one line per item as soon as it is judged, in order:
  ``{"status", "reason", "gold_parsed", "pred_parsed"}`` with status one of ``correct``,
  ``wrong``, ``bad_gold``, ``error``; an ``error`` that the compared texts themselves can cause
  (memory, recursion, a parser crash, every comparison raising) carries ``"cause": "input"``,
  which the parent re-checks on a fresh worker before it calls the answer ``unverifiable``;
  one that ran out of a limit (memory, recursion, parser crash) also ``"limit": true``.
  The parent times each item from the previous reply.

Candidates: gold = [ours] + [math-verify's on gold_raw]; pred = [math-verify's on pred_raw]
+ [ours]; CORRECT when any pair verifies. When *every* comparison raised, nothing was judged:
the status is ``error`` (never ``wrong``).

math-verify's own ``signal.alarm`` timeouts are switched off (they would turn a hang into a
silent ``False``, and cannot interrupt C code such as big-integer powers); the parent enforces
the wall-clock limit by killing this process. An optional ``RLIMIT_AS`` keeps a runaway
expression from taking the machine's memory; running out is reported as ``error``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from functools import lru_cache
from itertools import product
from typing import Any

_STR_LIMIT = 200

#: (gold, pred) pairs math-verify must call *not* equivalent; checked when a worker starts.
#: ``1-\frac{1}{e}`` vs ``1+\frac{1}{e}`` was a reported false positive of math-verify.
KNOWN_FALSE_POSITIVES: tuple[tuple[str, str], ...] = (
    ("1+\\frac{1}{e}", "1-\\frac{1}{e}"),
    ("1-\\frac{1}{e}", "1+\\frac{1}{e}"),
    ("\\frac{1}{e}", "-\\frac{1}{e}"),
    # math-verify 0.9.0 cuts "\frac{1}{\mathrm{e}}" to "\frac{1}{" and reads both sides as 1
    ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 + \\frac{1}{\\mathrm{e}}"),
)
#: upright single letters (``\mathrm{e}``, ``\operatorname{i}``) math-verify mis-parses; they are
#: rewritten to the plain letter (``e`` is Euler's number, ``i`` the imaginary unit) first
_UPRIGHT_RE = re.compile(r"\\(?:mathrm|operatorname|text|textrm|rm)\s*\{\s*([A-Za-z])\s*\}")


def _pre(text: str) -> str:
    """What every text goes through before math-verify (see :data:`_UPRIGHT_RE`)."""
    return _UPRIGHT_RE.sub(r"\1", text) if "\\" in text else text


def _short(x: object) -> str:
    """``str(x)`` cut to a few hundred characters (only called inside the parent's time limit)."""
    s = str(x)
    return s if len(s) <= _STR_LIMIT else s[: _STR_LIMIT - 3] + "..."


class ParseCrash(BaseException):  # noqa: N818 - a signal, not an error type
    """math-verify's LaTeX parser hit RecursionError / MemoryError: could not judge.

    A BaseException so that math-verify's own ``except Exception`` blocks (which would turn a
    crash into "did not parse", i.e. WRONG) let it through.
    """


def _guard_parse_crashes() -> None:
    """Wrap ``math_verify.parser.parse_latex_cached`` so parser crashes raise ParseCrash."""
    import math_verify.parser as mvp

    inner = mvp.parse_latex_cached
    if getattr(inner, "_verimath_guarded", False):
        return

    def guarded(latex: str) -> Any:
        try:
            return inner(latex)
        except (RecursionError, MemoryError) as e:
            raise ParseCrash(type(e).__name__) from None

    guarded._verimath_guarded = True  # type: ignore[attr-defined]
    mvp.parse_latex_cached = guarded  # type: ignore[assignment]


class _Judge:
    """Parses and compares with math-verify; one instance per worker process."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import math_verify
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        # the parent kills us on a hang; math-verify's signal-based timeout is off on purpose
        for modname in ("math_verify.grader", "math_verify.parser"):
            sys.modules[modname].TIMEOUT_WARNING_SHOWN = True  # type: ignore[attr-defined]
        self.parse_fn = parse
        self.verify_fn = verify
        _guard_parse_crashes()
        self.extraction = [LatexExtractionConfig(boxed_match_priority=0)]
        self.raw_extraction = [
            LatexExtractionConfig(boxed_match_priority=0),
            ExprExtractionConfig(),
        ]
        self.float_rounding = int(cfg.get("float_rounding", 6))
        self.numeric_precision = int(cfg.get("numeric_precision", 15))
        self.strict = bool(cfg.get("strict", True))
        self.set_relation = bool(cfg.get("allow_set_relation_comp", False))
        self.version = getattr(math_verify, "__version__", None) or _dist_version()
        self.parse = lru_cache(maxsize=2048)(self._parse)  # type: ignore[method-assign]
        self.parse_raw = lru_cache(maxsize=512)(self._parse_raw)  # type: ignore[method-assign]

    def _parse(self, answer: str) -> tuple[Any, ...]:
        r"""math-verify's parse of ``\boxed{answer}``: sympy objects only, no string fallback."""
        return tuple(
            self.parse_fn(
                "\\boxed{" + _pre(answer) + "}",
                extraction_config=self.extraction,
                fallback_mode="no_fallback",
                parsing_timeout=None,  # type: ignore[arg-type]
            )
        )

    def _parse_raw(self, text: str) -> tuple[Any, ...]:
        """math-verify's own extraction on a raw text (boxed first, then LaTeX, expressions)."""
        return tuple(
            self.parse_fn(
                _pre(text),
                extraction_config=self.raw_extraction,
                parsing_timeout=None,  # type: ignore[arg-type]
            )
        )

    def self_check(self) -> str | None:
        """Why this math-verify must not be used (a known false positive holds), or None."""
        from verimath.reasoning.extract import clean_answer

        for gold, pred in KNOWN_FALSE_POSITIVES:
            g, p = clean_answer(gold), clean_answer(pred)  # as the grader sends them
            res = self.judge(g, p, gold_raw=gold if g != gold else None,
                             pred_raw=pred if p != pred else None)
            if res["status"] == "correct":
                return (f"math-verify {self.version} calls {gold!r} and {pred!r} equivalent "
                        "(known false positive); install another math-verify version")
        return None

    def judge(self, gold: str, pred: str, gold_raw: str | None = None,
              pred_raw: str | None = None) -> dict[str, Any]:
        """Compare every gold candidate with every prediction candidate (see module docstring).

        Our candidates are compared first; math-verify's own extraction of the raw texts only
        runs when they do not already agree (same verdict as comparing all pairs, less work).
        Raw candidates can only add a CORRECT: when every comparison of our own candidates
        raised, the verdict stays ERROR unless a raw pair verifies. A parser crash
        (RecursionError / MemoryError inside math-verify) is ERROR, never "did not parse".
        """
        try:
            return self._judge(gold, pred, gold_raw, pred_raw)
        except ParseCrash as e:
            return {"status": "error", "reason": f"math-verify's parser crashed ({e})",
                    "cause": "input", "limit": True}

    def _judge(self, gold: str, pred: str, gold_raw: str | None,
               pred_raw: str | None) -> dict[str, Any]:
        g = list(self.parse(gold)) if gold else []  # "": no answer of ours, raw text only
        p = list(self.parse(pred))
        if g and p:
            first = self._compare(list(product(g, p)))
            if first[0] is not None:
                return first[0]
        else:
            first = (None, 0, list[str]())
        g_raw = [x for x in self.parse_raw(gold_raw) if x not in g] if gold_raw else []
        p_raw = [x for x in self.parse_raw(pred_raw) if x not in p] if pred_raw else []
        g_all, p_all = g + g_raw, p_raw + p
        if not g_all:
            return {"status": "bad_gold", "reason": "math-verify could not parse the gold answer"}
        out: dict[str, Any] = {"gold_parsed": _short(g_all[0])}
        if not p_all:
            out.update(status="wrong", reason="prediction did not parse as math")
            return out
        out["pred_parsed"] = _short(p_all[0])
        rest = [(gi, pi) for gi, pi in product(g_all, p_all) if gi in g_raw or pi in p_raw]
        res, done, errors = self._compare(rest)
        if res is not None:
            return {**out, **res}
        ours_all_raised = bool(g and p) and first[1] == 0 and bool(first[2])
        done += first[1]
        errors += first[2]
        raised = ", ".join(sorted(set(errors)))
        if not done or ours_all_raised:  # our own answer could not be compared: no judgment
            what = "every comparison" if not done else "every comparison of the extracted answer"
            out.update(status="error", reason=f"math-verify: {what} raised ({raised})",
                       cause="input")
            return out
        reason = "math-verify: not equivalent"
        if errors:
            reason += f" (some comparisons raised {raised})"
        out.update(status="wrong", reason=reason)
        return out

    def _compare(self, pairs: list[tuple[Any, Any]]
                 ) -> tuple[dict[str, Any] | None, int, list[str]]:
        """Verify ``(gold, pred)`` pairs in order until one holds.

        Returns ``(final result or None, comparisons completed, exception names)``; the
        result is set on the first equivalent pair or on MemoryError/RecursionError.
        """
        done, errors = 0, list[str]()
        for gi, pi in pairs:
            try:
                ok = self.verify_fn(
                    gi,
                    pi,
                    float_rounding=self.float_rounding,
                    numeric_precision=self.numeric_precision,
                    strict=self.strict,
                    allow_set_relation_comp=self.set_relation,
                    timeout_seconds=None,
                    raise_on_error=True,
                )
            except (MemoryError, RecursionError) as e:
                why = f"math-verify: {type(e).__name__}"
                return {"status": "error", "reason": why, "cause": "input", "limit": True}, \
                    done, errors
            except Exception as e:  # noqa: BLE001 - one comparison that could not be made
                errors.append(type(e).__name__)
                continue
            done += 1
            if ok:
                return ({"status": "correct", "reason": "math-verify: equivalent",
                         "gold_parsed": _short(gi), "pred_parsed": _short(pi)}, done, errors)
        return None, done, errors


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
    problem = judge.self_check()
    hello = {"ready": problem is None, "pid": os.getpid(), "math_verify": judge.version}
    if problem:
        hello["error"] = problem
    out.write(json.dumps(hello) + "\n")
    out.flush()
    if problem:
        return 3
    for line in sys.stdin:
        items = json.loads(line)["items"]
        for item in items:
            out.write(json.dumps(_judge_one(judge, *item)) + "\n")
            out.flush()
    return 0


def _judge_one(judge: _Judge, gold: str, pred: str, gold_raw: str | None = None,
               pred_raw: str | None = None) -> dict[str, Any]:
    try:
        return judge.judge(str(gold), str(pred), gold_raw, pred_raw)
    except (MemoryError, RecursionError) as e:
        return {"status": "error", "reason": f"math-verify: {type(e).__name__}", "cause": "input",
                "limit": True}
    except Exception as e:  # noqa: BLE001 - reported to the parent, worker stays up
        return {"status": "error", "reason": f"grader worker: {type(e).__name__}: {e}"[:300]}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
