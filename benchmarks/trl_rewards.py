r"""TRL's own ``accuracy_reward`` vs ``verimath.rewards.accuracy_reward`` on the same completions.

Completions: ``benchmarks/grading.py --raw``'s whole solutions: for each of the first
``--problems`` MATH-500 problems (default 256, i.e. 1,024 completions), the gold solution with
its last box replaced by the same answer, a reformatting (``\dfrac``, fraction <-> decimal,
``$..$``), the answer plus one, and a wrong symbol. The gold column is the whole MATH-500
solution (TRL's ``solution``). Expected reward: 1.0 for ``same`` / ``reformat``, 0.0 for
``plus_one`` / ``wrong_symbol``.

* TRL: ``trl.rewards.accuracy_reward`` (math-verify in the calling process, its signal-based
  timeouts), called in TRL's batches of ``--batch`` conversational completions;
* ours: ``verimath.rewards.accuracy_reward`` with ``--workers`` grader processes, same batches,
  timed after the shared grader is up (start-up reported separately).

Prints rewards/s of each and the ratio, the share of None, the agreement, and every kind of
disagreement with counts, examples and which side matches the expected reward.

Run: ``python benchmarks/trl_rewards.py [--problems 256] [--workers 2] [--batch 64]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import time
from collections import Counter
from pathlib import Path

_HERE = Path(__file__).resolve().parent
EXPECTED = {"same": 1.0, "reformat": 1.0, "plus_one": 0.0, "wrong_symbol": 0.0}
_BOX = re.compile(r"\\boxed\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")


def _grading_module():
    spec = importlib.util.spec_from_file_location("bench_grading", _HERE / "grading.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _batches(n: int, size: int):
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def run(fn, comps, sols, batch: int) -> tuple[list, float]:
    out: list = []
    t0 = time.perf_counter()
    for idx in _batches(len(comps), batch):
        out += fn([comps[i] for i in idx], solution=[sols[i] for i in idx])
    return out, time.perf_counter() - t0


def _last_box(text: str) -> str:
    boxes = _BOX.findall(text)
    return boxes[-1] if boxes else "-"


def _fmt(r) -> str:
    return "None" if r is None else f"{r:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=256, help="MATH-500 problems (x4 completions)")
    ap.add_argument("--workers", type=int, default=2, help="our grader worker processes")
    ap.add_argument("--batch", type=int, default=64, help="completions per reward call")
    ap.add_argument("--examples", type=int, default=4, help="examples per disagreement kind")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    triples = _grading_module().build_raw_pairs(args.problems)
    sols = [g for g, _, _ in triples]
    comps = [[{"role": "assistant", "content": t}] for _, t, _ in triples]
    kinds = [k for _, _, k in triples]
    n = len(triples)
    print(f"{n} completions ({args.problems} MATH-500 problems x 4), batches of {args.batch}")

    from trl.rewards import accuracy_reward as trl_reward

    from verimath import rewards

    trl_out, trl_s = run(trl_reward, comps, sols, args.batch)
    rewards.configure(grader_workers=args.workers)
    t0 = time.perf_counter()
    rewards.accuracy_reward([r"\boxed{\frac12}"] * (2 * args.workers), solution=["0.5"] *
                            (2 * args.workers))  # start and warm the shared grader
    startup = time.perf_counter() - t0
    ours_out, ours_s = run(rewards.accuracy_reward, comps, sols, args.batch)
    rewards.close()

    print(f"\n{'':22}{'rewards/s':>10}{'seconds':>9}{'None':>7}{'right':>7}")
    for name, out, secs in (("trl accuracy_reward", trl_out, trl_s),
                            (f"ours ({args.workers} workers)", ours_out, ours_s)):
        right = sum(o == EXPECTED[k] for o, k in zip(out, kinds, strict=True))
        nones = sum(o is None for o in out)
        print(f"{name:22}{n / secs:10.1f}{secs:9.2f}{nones / n:7.1%}{right / n:7.1%}")
    print(f"ratio ours / trl: {trl_s / ours_s:.2f}x   (our grader start-up: {startup:.2f} s, "
          "not in the timing)")

    same = sum(a == b for a, b in zip(trl_out, ours_out, strict=True))
    print(f"\nagreement: {same}/{n} ({same / n:.1%})")
    diff: Counter = Counter()
    examples: dict[tuple, list[str]] = {}
    for i, (a, b) in enumerate(zip(trl_out, ours_out, strict=True)):
        if a == b:
            continue
        exp = EXPECTED[kinds[i]]
        right = "trl" if a == exp else "ours" if b == exp else "neither"
        key = (kinds[i], _fmt(a), _fmt(b), right)
        diff[key] += 1
        ex = examples.setdefault(key, [])
        if len(ex) < args.examples:
            pred = _last_box(comps[i][0]["content"])
            ex.append(f"gold {_last_box(sols[i])!r} vs completion {pred!r}")
    if diff:
        print(f"\n{'perturbation':14}{'trl':>6}{'ours':>6}  {'right':8}{'count':>6}")
        for key, c in diff.most_common():
            print(f"{key[0]:14}{key[1]:>6}{key[2]:>6}  {key[3]:8}{c:6}")
            for e in examples[key]:
                print(f"      {e}")


if __name__ == "__main__":
    main()
