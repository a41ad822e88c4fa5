"""Grader throughput: verimath's Grader (N worker processes) vs math-verify called directly.

Pairs: every MATH-500 gold answer (last ``\\boxed{}`` of the solution) with four perturbed
predictions: the same answer, a reformatting (fraction <-> decimal, ``\\dfrac``, spacing,
``$..$``), the answer plus one, and a wrong symbol. Both sides see exactly the same strings.

* baseline: one process, ``verify(parse(r"\\boxed{gold}"), parse(r"\\boxed{pred}"))`` with
  math-verify's default extraction configs and its own (signal.alarm) timeouts;
* ours: ``Grader(GraderConfig(workers=N)).grade_many(pairs, extract=False)``, timed after the
  workers are up (start-up reported separately), with and without the normalised-string fast
  path.

Prints verdicts/s of each (best of ``--repeat`` runs), the ratio to the baseline, and the
agreement (ours CORRECT == baseline True) overall and per perturbation.

``--raw`` grades the *raw texts* instead: the whole MATH-500 gold solution against a whole
prediction (the gold solution with its last box replaced by the perturbed answer and the
trailing "The answer is:" line dropped). Baseline: math-verify's own ``verify(parse(gold_text),
parse(pred_text))`` (default configs) in one process; ours: ``grade_many(pairs)`` with
extraction. It reports the agreement where math-verify decides (it extracted something from
both texts; target 100%) and how often ours is worse (math-verify True, ours not CORRECT).

Run: ``python benchmarks/grading.py [--workers 1,2] [--repeat 3] [--limit L] [--raw]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

from verimath.reasoning.extract import extract_gold
from verimath.reasoning.grading import Grader, GraderConfig

_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = Path(os.environ.get("VERIMATH_SHARED_DATA", _DEFAULT_DATA))

_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_INT = re.compile(r"^-?\d+$")


def _reformat(gold: str) -> str:
    """Same value, different presentation."""
    m = _FRAC.match(gold)
    if m:
        value = Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
        den = value.denominator
        while den % 2 == 0:
            den //= 2
        while den % 5 == 0:
            den //= 5
        if den == 1:  # terminating decimal
            return str(float(value))
        return f"{value.numerator}/{value.denominator}"
    if _INT.match(gold):
        return rf"\frac{{{2 * int(gold)}}}{{2}}"
    if re.fullmatch(r"-?\d+\.\d+", gold):
        return rf"\frac{{{Fraction(gold).numerator}}}{{{Fraction(gold).denominator}}}"
    out = gold.replace(r"\frac", r"\dfrac")
    out = re.sub(r",(?![\d\\ ])", ", ", out)  # space after list commas, not "10,\!080"
    if r"\left" not in out and out.startswith("(") and out.endswith(")"):
        out = r"\left(" + out[1:-1] + r"\right)"
    return f"${out}$" if out == gold else out


def _plus_one(gold: str) -> str:
    """A different value: gold + 1."""
    if _INT.match(gold):
        return str(int(gold) + 1)
    return f"{gold}+1"


def _wrong_symbol(gold: str) -> str:
    """A different expression: one symbol swapped (digit or variable), else a sign flip."""
    m = re.search(r"(?<![\\a-zA-Z])[a-z](?![a-zA-Z])", gold)
    if m:
        return gold[: m.start()] + ("q" if m.group(0) != "q" else "p") + gold[m.end():]
    m = re.search(r"\d", gold)
    if m:
        d = str((int(m.group(0)) + 3) % 10)
        return gold[: m.start()] + d + gold[m.end():]
    return f"-({gold})"


def build_pairs(limit: int | None) -> list[tuple[str, str, str]]:
    """(gold, pred, perturbation) triples over the MATH-500 golds."""
    rows = [json.loads(line) for line in open(DATA / "math500" / "test.jsonl", encoding="utf-8")]
    out = []
    for r in rows[:limit]:
        gold = extract_gold(r["answer"], "math500")
        assert gold
        out += [(gold, gold, "same"), (gold, _reformat(gold), "reformat"),
                (gold, _plus_one(gold), "plus_one"), (gold, _wrong_symbol(gold), "wrong_symbol")]
    return out


_TRAILER = re.compile(r"\s*The answer is:.*\Z", re.DOTALL)


def build_raw_pairs(limit: int | None) -> list[tuple[str, str, str]]:
    """(gold solution, whole predicted solution, perturbation) over the MATH-500 solutions."""
    rows = [json.loads(line) for line in open(DATA / "math500" / "test.jsonl", encoding="utf-8")]
    out = []
    for r in rows[:limit]:
        sol = r["answer"]
        gold = extract_gold(sol, "math500")
        assert gold
        body = _TRAILER.sub("", sol)
        box = "\\boxed{" + gold + "}"
        cut = body.rfind(box)
        for pred, kind in ((gold, "same"), (_reformat(gold), "reformat"),
                           (_plus_one(gold), "plus_one"), (_wrong_symbol(gold), "wrong_symbol")):
            new_box = "\\boxed{" + pred + "}"
            text = (body[:cut] + new_box + body[cut + len(box):] if cut >= 0
                    else body + f"\n\nSo the answer is ${new_box}$.")
            out.append((sol, text, kind))
    return out


def run_baseline(pairs: list[tuple[str, str, str]], raw: bool = False
                 ) -> tuple[list[bool], list[bool], float]:
    """math-verify directly, one process, its default configs and timeouts.

    Returns (verdicts, decided: math-verify extracted something from both sides, seconds).
    """
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    res, decided = [], []
    for g, p, _ in pairs:
        gp = parse(g) if raw else parse(rf"\boxed{{{g}}}")
        pp = parse(p) if raw else parse(rf"\boxed{{{p}}}")
        res.append(bool(verify(gp, pp)))
        decided.append(bool(gp) and bool(pp))
    return res, decided, time.perf_counter() - t0


def run_ours(pairs: list[tuple[str, str, str]], workers: int, fast_path: bool,
             timeout_s: float, raw: bool = False) -> tuple[list[str], float, float]:
    """Our grader; returns statuses, grading seconds, start-up seconds."""
    t0 = time.perf_counter()
    with Grader(GraderConfig(workers=workers, timeout_s=timeout_s,
                             string_fast_path=fast_path)) as g:
        # warm every worker (a comparison that skips the fast path), then time the batch
        g.grade_many([(r"\frac{1}{2}", "0.5")] * workers * 2, extract=False)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        verdicts = g.grade_many([(gd, p) for gd, p, _ in pairs], extract=raw)
        elapsed = time.perf_counter() - t1
    return [str(v.status) for v in verdicts], elapsed, startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--limit", type=int, default=None, help="first L MATH-500 problems")
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3, help="best of R timed runs per setting")
    ap.add_argument("--raw", action="store_true",
                    help="whole solutions (raw texts) instead of extracted answers")
    args = ap.parse_args()

    pairs = build_raw_pairs(args.limit) if args.raw else build_pairs(args.limit)
    n = len(pairs)
    kinds = [k for _, _, k in pairs]
    what = "whole solutions (raw texts)" if args.raw else "answers"
    print(f"pairs: {n} ({n // 4} MATH-500 golds x same/reformat/plus_one/wrong_symbol), "
          f"{what}; cpus: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
    settings = [(int(w), fast) for w in args.workers.split(",") for fast in (True, False)]
    best: dict[object, float] = {}
    statuses: dict[object, list[str]] = {}
    startup: dict[object, float] = {}
    base: list[bool] = []
    decided: list[bool] = []
    for _ in range(args.repeat):  # interleaved, best of R: load drift hits every setting alike
        base, decided, secs = run_baseline(pairs, args.raw)
        best["base"] = min(best.get("base", secs), secs)
        for key in settings:
            st, secs, start = run_ours(pairs, key[0], key[1], args.timeout_s, args.raw)
            statuses[key], startup[key] = st, start
            best[key] = min(best.get(key, secs), secs)
    base_rate = n / best["base"]
    print(f"baseline math-verify, 1 process: {base_rate:8.1f} verdicts/s ({best['base']:.2f} s)")
    for key in settings:
        workers, fast = key
        st = statuses[key]
        rate = n / best[key]
        agree = sum((s == "correct") == b for s, b in zip(st, base, strict=True))
        print(f"ours workers={workers} fast_path={'on ' if fast else 'off'}: {rate:8.1f} "
              f"verdicts/s ({best[key]:.2f} s, start-up {startup[key]:.2f} s)  "
              f"ratio {rate / base_rate:.2f}x  agreement {agree}/{n} "
              f"({100 * agree / n:.1f}%)  statuses {dict(Counter(st))}")
        per = Counter(k for k, s, b in zip(kinds, st, base, strict=True) if (s == "correct") != b)
        if per:
            print(f"    disagreements by perturbation: {dict(per)}")
        dec = [(s, b) for s, b, d in zip(st, base, decided, strict=True) if d]
        agree_dec = sum((s == "correct") == b for s, b in dec)
        worse = sum(b and s != "correct" for s, b in dec)
        print(f"    where math-verify decides ({len(dec)}/{n}): agreement {agree_dec}/{len(dec)} "
              f"({100 * agree_dec / max(1, len(dec)):.1f}%), ours worse (math-verify True, ours "
              f"not correct) {worse}")
    print("baseline CORRECT by perturbation:",
          {k: sum(b for b, kk in zip(base, kinds, strict=True) if kk == k) for k in
           ("same", "reformat", "plus_one", "wrong_symbol")}, f"of {n // 4} each")


if __name__ == "__main__":
    main()
