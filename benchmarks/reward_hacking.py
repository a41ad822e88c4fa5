"""Reward hacking: what a gaming completion earns, and what the re-check costs (issue 18).

Part 1, per category of gaming completion (CoT answers that hang the grader, PoT programs that
never end or flood their output, Lean proofs that run Lean out of time or use ``sorry``): its
reward, and the GRPO advantage it receives in a group of one right and six honest wrong answers
(group-normalised, Shao et al. 2024: ``(r - mean) / (std + 1e-4)`` over the judged samples; a
None reward leaves the sample out, i.e. advantage 0). It must be <= the honest wrong answer's.
"adv if None" is what the sample would get as a skipped (None) sample, the escape that answers
hanging the grader and proofs timing Lean out had before issue 18.

Part 2, wall time of the answer reward on 512 completions through the real grader: an honest
batch with the re-check switched off (``Grader._settle`` a no-op: the behaviour before issue 18)
vs on, in the same run (the re-check must not slow honest batches), and a mixed batch (5%
gaming completions) with the re-check on.

Run: ``python benchmarks/reward_hacking.py`` (about 3-4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def advantages(rewards: list[float | None]) -> list[float]:
    """GRPO group-normalised advantages over judged samples; an unjudged sample gets 0."""
    judged = [r for r in rewards if r is not None]
    mean = sum(judged) / len(judged)
    std = math.sqrt(sum((r - mean) ** 2 for r in judged) / max(1, len(judged) - 1))
    return [0.0 if r is None else (r - mean) / (std + 1e-4) for r in rewards]


def part1(grader, sandbox) -> None:
    from tests.prover.conftest import AUDIT_CASES, case_responder
    from verimath.prover.scripted import recorded_checker
    from verimath.prover.types import LeanVersion
    from verimath.rl.rewards import AnswerReward, ProofReward, VerifierPool

    cot = AnswerReward(VerifierPool(grader=grader, workers=2), strategy="cot")
    pot = AnswerReward(VerifierPool(grader=grader, sandbox=sandbox, workers=2), strategy="pot")
    cases = {c["id"]: c for c in AUDIT_CASES}
    lean = LeanVersion("leanprover/lean4:v4.9.0", "abc123")

    def proof(case_id: str) -> float | None:
        c = cases[case_id]
        fn = ProofReward(VerifierPool(checker=recorded_checker(case_responder(c), lean=lean)))
        return fn([f"```lean4\n{c['proof']}\n```"], formal_statement=[c["formal_statement"]],
                  header=[c["header"]])[0]

    rows = [
        ("cot: power tower", lambda: cot([r"\boxed{9^{9^{9^{9}}}}"], answer=["7"])[0]),
        ("cot: factorial of a tower", lambda: cot([r"\boxed{(10^{10^{10^{10}}})!}"],
                                                  answer=["7"])[0]),
        ("cot: 5000 levels of nesting", lambda: cot([r"\boxed{" + "(" * 5000 + "7" + ")" * 5000
                                                     + "}"], answer=["7"])[0]),
        ("cot: own output block", lambda: cot(["```output\n7\n```"], answer=["7"])[0]),
        ("pot: endless loop", lambda: pot(["```python\nwhile True:\n    pass\n```"],
                                          answer=["7"])[0]),
        ("pot: floods the gold", lambda: pot(["```python\nwhile True:\n    print(7)\n```"],
                                             answer=["7"])[0]),
        ("pot: kills itself", lambda: pot(["```python\nimport os\nos.kill(os.getpid(), 9)\n```"],
                                          answer=["7"])[0]),
        ("lean: runs Lean out of time", lambda: proof("timeout")),
        ("lean: sorry", lambda: proof("sorry_text")),
        ("lean: new axiom", lambda: proof("new_axiom")),
    ]
    print("part 1: a gaming completion in a group of 1 right + 6 honest wrong answers")
    print(f"{'category':34s} {'reward':>7s} {'adv if None':>13s} {'adv (now)':>12s} "
          f"{'honest wrong adv':>17s}  ok")
    for name, call in rows:
        t0 = time.perf_counter()
        r = call()
        before = advantages([1.0] + [0.0] * 6 + [None])  # a skipped sample
        after = advantages([1.0] + [0.0] * 6 + [r])
        ok = r is not None and after[-1] <= after[1] + 1e-9
        print(f"{name:34s} {str(r):>7s} {before[-1]:13.3f} {after[-1]:12.3f} {after[1]:17.3f}"
              f"  {'yes' if ok else 'NO'}   ({time.perf_counter() - t0:.1f} s)")


def part2(grader_cfg, n: int, seed: int) -> None:
    import verimath.reasoning.grading as grading
    from verimath.reasoning.grading import Grader
    from verimath.rl.rewards import AnswerReward, VerifierPool

    rng = random.Random(seed)
    honest = []
    for _ in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        right = rng.random() < 0.5
        honest.append((rf"So the answer is \boxed{{{a + b if right else a + b + 1}}}", str(a + b)))
    gaming = [r"\boxed{9^{9^{9^{9}}}}", r"\boxed{(10^{10^{10^{10}}})!}",
              r"\boxed{" + "(" * 5000 + "7" + ")" * 5000 + "}"]
    mixed = [(rng.choice(gaming), gold) if rng.random() < 0.05 else (c, gold)
             for c, gold in honest]

    def timed(pairs, recheck: bool) -> tuple[float, list[float | None]]:
        real = Grader._settle
        if not recheck:
            def no_settle(self, item):  # before issue 18: the first failure is final
                item.recheck = False
            grading.Grader._settle = no_settle  # type: ignore[method-assign]
        try:
            with Grader(grader_cfg) as g:
                g.grade("1", "1.0", extract=False)  # workers up
                fn = AnswerReward(VerifierPool(grader=g, workers=4), strategy="cot")
                t0 = time.perf_counter()
                out = fn([c for c, _ in pairs], answer=[gold for _, gold in pairs])
                return time.perf_counter() - t0, out
        finally:
            grading.Grader._settle = real  # type: ignore[method-assign]

    print(f"\npart 2: answer reward wall time, {n} completions, grader "
          f"timeout_s={grader_cfg.timeout_s:g}, workers={grader_cfg.workers}")
    offs, ons, same = [], [], True
    for _ in range(3):  # alternating, median of three each
        t_off, r_off = timed(honest, recheck=False)
        t_on, r_on = timed(honest, recheck=True)
        offs.append(t_off)
        ons.append(t_on)
        same &= r_on == r_off
    t_off, t_on = sorted(offs)[1], sorted(ons)[1]
    print(f"honest batch, re-check off (before): {t_off:7.2f} s  ({n / t_off:6.1f} rewards/s)")
    print(f"honest batch, re-check on  (after) : {t_on:7.2f} s  ({n / t_on:6.1f} rewards/s)  "
          f"ratio after/before = {t_on / t_off:.2f}; same rewards: {same}")
    t_mix, r_mix = timed(mixed, recheck=True)
    n_gaming = sum(1 for c, _ in mixed if c in gaming)
    got = [r for (c, _), r in zip(mixed, r_mix, strict=True) if c in gaming]
    print(f"mixed batch ({n_gaming} gaming), re-check on: {t_mix:7.2f} s; gaming rewards: "
          f"{sorted(set(map(str, got)))}; None in batch: {sum(r is None for r in r_mix)}")


def main() -> None:
    from verimath.reasoning.grading import Grader, GraderConfig
    from verimath.reasoning.sandbox import Sandbox, SandboxConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--timeout-s", type=float, default=2.0, help="grader timeout_s")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = GraderConfig(timeout_s=args.timeout_s, workers=2)
    with Grader(cfg) as g, Sandbox(SandboxConfig(timeout_s=2.0, memory_mb=256, workers=2)) as sb:
        part1(g, sb)
    part2(cfg, args.n, args.seed)


if __name__ == "__main__":
    main()
