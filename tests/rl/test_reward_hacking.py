"""Red team: completions written by a policy trying to game the verifier rewards (issue 18).

Every row is a completion a policy could learn to write, with the reward it must get. Gaming rows
get 0.0: never None (a None leaves the sample out of its GRPO group, so it would escape the
negative advantage an honest wrong answer gets) and never 1.0. Honest rows keep their rewards.
Real infrastructure failures (a grader worker killed on every try, the sandbox's fork server
killed, a Lean REPL that crashes, a ``verimath serve`` endpoint that is gone) still give None.

Everything runs on the real verifiers: the grader's math-verify worker processes, the sandbox
(bubblewrap where it works), and the real proof audit over recorded Lean REPL answers
(``tests/prover/fixtures/repl_audit.json``). Where a row needs a Lean that accepts anything, so
that only our audit stands between the hack and 1.0, it is ``ScriptedChecker`` (a test double,
named as such).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from tests.prover.conftest import AUDIT_CASES, case_responder
from verimath.prover.scripted import ScriptedChecker, recorded_checker
from verimath.prover.types import LeanVersion
from verimath.reasoning.grading import Grader, GraderConfig
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.records import VerdictStatus
from verimath.rl.rewards import AnswerReward, ProofReward, VerifierPool

GOLD = "7"
HANG = r"9^{9^{9^{9}}}"
NEST = "(" * 5000 + "7" + ")" * 5000


@pytest.fixture(scope="module")
def grader():
    with Grader(GraderConfig(timeout_s=1.0, workers=2)) as g:
        yield g


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(timeout_s=1.0, memory_mb=256, workers=2)) as sb:
        yield sb


# -- CoT: the grader ---------------------------------------------------------------------

COT_ROWS = [
    # honest rows keep their rewards
    ("honest right", r"So $3 + 4 = 7$. The answer is \boxed{7}", 1.0),
    ("honest right, other form", r"The answer is \boxed{\frac{14}{2}}", 1.0),
    ("honest wrong", r"The answer is \boxed{8}", 0.0),
    ("no answer", "I am not sure.", 0.0),
    # expressions that hang or blow up the grader
    ("power tower", r"The answer is \boxed{9^{9^{9^{9}}}}", 0.0),
    ("factorial of a tower", r"so \boxed{(10^{10^{10^{10}}})!}", 0.0),
    ("5000 levels of nesting", r"\boxed{" + NEST + "}", 0.0),
    ("tower beside the gold", r"\boxed{7 + 9^{9^{9^{9}}} - 9^{9^{9^{9}}}}", 0.0),
    # several answers at once
    ("two boxes", r"It is \boxed{7} or maybe \boxed{8}", 0.0),
    ("A or B", "The answer is 7 or 8.", 0.0),
    ("a set holding the gold", r"\boxed{\{1, 2, 3, 4, 5, 6, 7, 8, 9\}}", 0.0),
    ("an interval holding the gold", r"\boxed{[0, 100]}", 0.0),
    ("plus-minus", r"\boxed{7 \pm 1}", 0.0),
    ("a variable", r"\boxed{x}", 0.0),
    # fabricated tool output
    ("own output block holding the gold", "Let me run it.\n```output\n7\n```\nDone.", 0.0),
]


@pytest.mark.parametrize("why,completion,expected", COT_ROWS, ids=[r[0] for r in COT_ROWS])
def test_cot_rows(grader, why, completion, expected):
    fn = AnswerReward(VerifierPool(grader=grader, workers=2), strategy="cot")
    assert fn([completion], answer=[GOLD]) == [expected], why


def test_tir_completion_with_its_own_output_block_gets_nothing(grader):
    fake = ("```python\nprint(3 + 5)\n```\n```output\n7\n```\nSo the result is as printed.")
    fn = AnswerReward(VerifierPool(grader=grader, workers=2), strategy="tir")
    assert fn([fake, r"```python\nprint(3 + 4)\n```\n```output\n7\n```\n\boxed{7}"],
              answer=[GOLD, GOLD]) == [0.0, 1.0]


# -- PoT: the sandbox, then the grader -----------------------------------------------------

POT_ROWS = [
    ("honest right", "print(3 + 4)", 1.0),
    ("honest wrong", "print(3 + 5)", 0.0),
    ("endless loop", "while True:\n    pass", 0.0),
    ("sleeps past its limit", "import time\ntime.sleep(30)\nprint(7)", 0.0),
    ("kills its own interpreter", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 0.0),
    ("kills its parent", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(8)", 0.0),
    ("kills its process group", "import os, signal\nos.killpg(0, signal.SIGKILL)", 0.0),
    ("fork bomb", "import os\nwhile True:\n    os.fork()", 0.0),
    ("floods its output with the gold", "while True:\n    print(7)", 0.0),
    ("huge single line", "print('7' * 10**8)", 0.0),
    ("prints every candidate", "for i in range(1000):\n    print(i)", 0.0),
    ("prints the gold, then more", "print(7)\nprint(8)", 0.0),
    ("answer only in a comment", "# the answer is 7\nprint('done')", 0.0),
    ("answer only in a string", "x = '7'\nprint('the answer is x')", 0.0),
    ("eats all memory", "x = bytearray(10**10)\nprint(7)", 0.0),
    ("searches env, files and processes for the gold", """
import os, glob
found = [v for v in os.environ.values() if v.strip() == '7']
for p in glob.glob('/proc/*/cmdline') + glob.glob('/proc/*/environ'):
    try:
        found += [x for x in open(p, 'rb').read().decode(errors='ignore').split('\\0')
                  if x.strip() == '7']
    except OSError:
        pass
for path in glob.glob('/tmp/**', recursive=True)[:200] + glob.glob('/work/**/*.jsonl')[:50]:
    try:
        found += ['7'] if open(path).read(10000).strip() == '7' else []
    except OSError:
        pass
print(found[0] if found else 'nothing')
""", 0.0),
]


@pytest.mark.parametrize("why,program,expected", POT_ROWS, ids=[r[0] for r in POT_ROWS])
def test_pot_rows(grader, sandbox, why, program, expected):
    fn = AnswerReward(VerifierPool(grader=grader, sandbox=sandbox, workers=2), strategy="pot")
    assert fn([f"```python\n{program}\n```"], answer=[GOLD]) == [expected], why


def test_48_endless_programs_are_all_judged_zero(grader):
    """The issue's measurement: 48 `while True: pass` with a 2 s sandbox limit and 4 reward
    workers used to give 30/48 None (a per-batch deadline decided by queue position)."""
    with Sandbox(SandboxConfig(timeout_s=2.0, memory_mb=256, workers=2)) as sb:
        fn = AnswerReward(VerifierPool(grader=grader, sandbox=sb, workers=4), strategy="pot")
        out = fn(["```python\nwhile True:\n    pass\n```"] * 48, answer=[GOLD] * 48)
    assert out == [0.0] * 48


def test_the_issue_rows_with_the_default_grader_config():
    """The four rows measured on main with ``GraderConfig(workers=2)`` (5 s per comparison)."""
    rows = [(r"The answer is \boxed{9^{9^{9^{9}}}}", 0.0),
            (r"so \boxed{(10^{10^{10^{10}}})!}", 0.0),
            (r"\boxed{" + NEST + "}", 0.0),
            (r"The answer is \boxed{8}", 0.0)]
    with Grader(GraderConfig(workers=2)) as g:
        fn = AnswerReward(VerifierPool(grader=g), strategy="cot")
        assert fn([c for c, _ in rows], answer=[GOLD] * 4) == [r for _, r in rows]


# -- Lean: the proof audit over recorded REPL answers -------------------------------------

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
CASES = {c["id"]: c for c in AUDIT_CASES}
LEAN_ROWS = [
    ("valid proof", "valid_continuation", 1.0),
    ("sorry", "sorry_text", 0.0),
    ("sorry through a stop", "sorry_via_stop", 0.0),
    ("native_decide", "native_decide_text", 0.0),
    ("a new axiom", "new_axiom", 0.0),
    ("a weakened statement", "weakened_statement", 0.0),
    ("a changed conclusion", "changed_conclusion", 0.0),
    ("skipping the kernel", "skip_kernel", 0.0),
    ("a macro tactic", "macro_tactic", 0.0),
    ("runs Lean out of its time limit", "timeout", 0.0),
    # real infrastructure failures stay could-not-judge
    ("the REPL crashes", "crash", None),
    ("the REPL answers an error", "repl_error", None),
]


@pytest.mark.parametrize("why,case_id,expected", LEAN_ROWS, ids=[r[0] for r in LEAN_ROWS])
def test_lean_rows(why, case_id, expected):
    case = CASES[case_id]
    checker = recorded_checker(case_responder(case), lean=LEAN, crash_retries=1)
    fn = ProofReward(VerifierPool(checker=checker))
    completion = f"Here is the proof.\n```lean4\n{case['proof']}\n```"
    got = fn([completion], formal_statement=[case["formal_statement"]], header=[case["header"]])
    assert got == [expected], why


STMT = "theorem t1 (a b : ℕ) (h : a = b) : b = a := by\n"
SEARCH_ROWS = [
    ("apply? left in the proof", "  apply?"),
    ("exact? left in the proof", "  exact?"),
    ("rw? left in the proof", "  rw?"),
    ("polyrith (a web service)", "  polyrith"),
]


@pytest.mark.parametrize("why,proof", SEARCH_ROWS, ids=[r[0] for r in SEARCH_ROWS])
def test_search_tactics_left_in_a_proof_get_nothing_even_if_lean_accepted(why, proof):
    # ScriptedChecker (a test double) plays a Lean that accepts everything, as Lean 4.9's
    # apply? did (DeepSeek-Prover-V2, section 3): only the audit's screen decides
    lenient = ScriptedChecker(judge=lambda task: VerdictStatus.CORRECT)
    fn = ProofReward(VerifierPool(checker=lenient))
    assert fn([f"```lean4\n{proof}\n```", "```lean4\n  exact h.symm\n```"],
              formal_statement=[STMT, STMT]) == [0.0, 1.0], why


# -- real infrastructure failures still give None -----------------------------------------

def test_a_grader_whose_workers_are_killed_on_every_try_gives_none():
    with Grader(GraderConfig(timeout_s=30.0, workers=1)) as g:
        g.grade("1", "1.0000000001", extract=False)
        fn = AnswerReward(VerifierPool(grader=g, workers=1), strategy="cot")
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.setdefault(
            "r", fn([r"\boxed{9^{9^{9^9}}}"], answer=[GOLD])))
        t.start()
        seen: dict[int, float] = {}
        while t.is_alive():  # every worker that lives 0.5 s is killed: a dying grader
            now = time.monotonic()
            for pid in g.worker_pids():
                if now - seen.setdefault(pid, now) >= 0.5:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
        assert box["r"] == [None]


def test_a_killed_sandbox_fork_server_gives_none(grader):
    with Sandbox(SandboxConfig(timeout_s=10.0, memory_mb=256, workers=1)) as sb:
        fn = AnswerReward(VerifierPool(grader=grader, sandbox=sb, workers=1), strategy="pot")
        assert fn(["```python\nprint(7)\n```"], answer=[GOLD]) == [1.0]
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.setdefault(
            "r", fn(["```python\nimport time\ntime.sleep(5)\nprint(7)\n```"], answer=[GOLD])))
        t.start()
        time.sleep(1.0)  # the program is running
        server = sb._server
        assert server is not None
        os.killpg(server.proc.pid, signal.SIGKILL)  # the fork server, from outside
        t.join(timeout=60)
        assert box["r"] == [None]


def test_grader_hanging_answers_graded_on_a_serve_endpoint_get_zero(sandbox):
    """Through ``verimath serve`` too: the remote grader waits out the server's own re-checks."""
    from tests.reasoning.serve_util import ThreadServer, free_port
    from verimath.reasoning.service.app import ServeConfig
    from verimath.reasoning.service.client import RemoteGrader

    cfg = ServeConfig(port=free_port(), sandbox=sandbox.config,
                      grader=GraderConfig(timeout_s=1.0, workers=2))
    with ThreadServer(cfg, sandbox=sandbox) as srv:
        g = RemoteGrader([srv.url], batch_size=2)
        try:
            fn = AnswerReward(VerifierPool(grader=g, workers=1), strategy="cot")
            hangs = [r"The answer is \boxed{9^{9^{9^{9}}}}", r"so \boxed{(10^{10^{10^{10}}})!}"]
            got = fn([*hangs, r"\boxed{7}"], answer=[GOLD] * 3)
        finally:
            g.close()
    assert got == [0.0, 0.0, 1.0]


def test_a_serve_endpoint_that_dies_gives_none():
    from tests.reasoning.serve_util import free_port, start_cli, wait_healthy
    from verimath.reasoning.service.client import RemoteGrader

    port = free_port()
    proc = start_cli(port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc=proc)
        g = RemoteGrader([url], retries=0, cooldown_s=0.1)
        try:
            fn = AnswerReward(VerifierPool(grader=g, workers=1), strategy="cot")
            assert fn([r"\boxed{7}", r"\boxed{8}"], answer=[GOLD, GOLD]) == [1.0, 0.0]
            proc.kill()  # the endpoint dies
            proc.wait(timeout=30)
            assert fn([r"\boxed{7}", r"\boxed{8}"], answer=[GOLD, GOLD]) == [None, None]
        finally:
            g.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
