"""Shared pieces of the datagen tests: a scripted PoT "model" and an informal problem file.

Also runnable as a script (``python -m tests.datagen.helpers OUT INPUT``) so the kill -9 test can
run the pipeline in a child process and kill it mid-run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from verimath.testing import question_of

# question -> (gold answer or None, program printed by sample j)
PROBLEMS: dict[str, tuple[str | None, list[str]]] = {
    "What is 2+3?": ("5", ["print(5)", "print(2 + 3)", "print(6)", "raise ValueError('x')",
                           "print(5)"]),
    "What is 10/4?": ("5/2", ["print(10 / 4)", "print(2)", "print(10 / 4)", "print(3)",
                              "print(1)"]),
    "How many legs do 3 cats have?": (None, ["print(12)", "print(4 * 3)", "print(12.0)",
                                             "print(16)", "print(7)"]),
    "How many wheels do 2 bikes and 1 car have?": (None, ["print(1)", "print(2)", "print(3)",
                                                         "print(8)", "print(9)"]),
    "What is 7*6?": ("42", ["print(41)", "print(43)", "print('no')", "print(40)", "print(0)"]),
}


def pot_policy(prompt, j, params) -> str:
    """The scripted model: sample ``j`` of a known question writes its scripted program."""
    q = question_of(prompt)
    if q in PROBLEMS:
        code = PROBLEMS[q][1][j % 5]
    else:  # generated problems "What is A+B?" of many_problems(): right for even j
        a, b = (int(x) for x in q.removeprefix("What is ").removesuffix("?").split("+"))
        code = f"print({a} + {b})  # sample {j}" if j % 2 == 0 else f"print({a} + {b} + {j})"
    return f"```python\n{code}\n```"


def write_problems(path: Path) -> str:
    """The five PROBLEMS as a verimath-Problem JSONL (plus one bad line)."""
    with open(path, "w", encoding="utf-8") as f:
        for i, (q, (gold, _)) in enumerate(PROBLEMS.items()):
            f.write(json.dumps({"id": f"q{i}", "source": "scripted", "informal": q,
                                "answer": gold}) + "\n")
        f.write(json.dumps({"id": "bad", "source": "scripted", "informal": 3}) + "\n")
    return str(path)


def many_problems(path: Path, n: int) -> str:
    """``n`` GSM8K-style records ``What is A+B?`` with ``#### A+B`` solutions."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            a, b = 3 * i + 1, 7 * i + 2
            f.write(json.dumps({"question": f"What is {a}+{b}?",
                                "answer": f"{a}+{b}={a + b}\n#### {a + b}"}) + "\n")
    return str(path)


def informal_config(out: Path, inp: str, **solve: object):
    """A PoT config over ``inp`` with small, fast settings."""
    from verimath.datagen.config import DatagenConfig, DecontamConfig, SolveConfig
    from verimath.reasoning.grading import GraderConfig
    from verimath.reasoning.rollout import RolloutConfig
    from verimath.reasoning.sandbox import SandboxConfig

    return DatagenConfig(
        mode="informal", inputs=(inp,), out=str(out), decontam=DecontamConfig(enabled=False),
        rollout=RolloutConfig(strategy="pot", batch_problems=2),
        sandbox=SandboxConfig(timeout_s=5.0, workers=2), grader=GraderConfig(workers=1),
        solve=SolveConfig(**{"n": 5, "max_per_problem": 3, **solve}),  # type: ignore[arg-type]
    )


def _child(out: str, inp: str, delay_s: float) -> None:
    """Run the pipeline with a slow scripted backend (killed from outside by the test)."""
    from verimath.datagen.pipeline import Components, main
    from verimath.testing import ScriptedBackend

    cfg = informal_config(Path(out), inp, n=4)
    main(cfg, components=Components(backend=ScriptedBackend(pot_policy, delay_s=delay_s)))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], float(sys.argv[3]))
