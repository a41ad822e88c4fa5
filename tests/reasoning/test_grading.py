import json
import os
import signal
import threading
import time

import pytest

from verimath.reasoning.extract import extract_gold
from verimath.reasoning.grading import (
    GRADER_VERSION,
    Grader,
    GraderClosed,
    GraderConfig,
    GraderUnavailable,
)
from verimath.records import VerdictStatus

C, W, N, B, T, U = (
    VerdictStatus.CORRECT,
    VerdictStatus.WRONG,
    VerdictStatus.NO_ANSWER,
    VerdictStatus.BAD_GOLD,
    VerdictStatus.TIMEOUT,
    VerdictStatus.UNVERIFIABLE,
)
HANG = r"9^{9^{9^9}}"  # sympy tries to evaluate it: never returns (C big-int power)

GSM8K_SOLUTION = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $18.\n#### 18"
)
MATH_SOLUTION = r"So the chance is $\boxed{\frac{2}{3}}$.The answer is: \frac{2}{3}"


@pytest.fixture(scope="module")
def grader():
    with Grader(GraderConfig(timeout_s=4.0, workers=2)) as g:
        yield g


# One row per case; every bug found becomes a new row.
CASES = [
    # --- extraction formats (pred is a whole solution) ---
    (r"\frac{1}{2}", r"so $\boxed{\frac{1}{2}}$.", C),
    (r"\frac{\sqrt{3}}{2}", r"Thus $\boxed{\dfrac{\sqrt{3}}{2}}$.", C),  # nested braces
    ("7", r"\fbox{7}", C),
    ("5", r"The result: \boxed 5", C),
    ("18", "She makes $18 every day. The answer is 18.", C),
    ("5", "Final Answer: The final answer is $5$. I hope it is correct.", C),
    ("1000", "so 1,000 in all\n#### 1,000", C),
    ("42", "First 6*7 = 42, so Jim has 42 apples left", C),
    ("42", "6*7 = 43", W),
    ("3", "3.0\n", C),  # a program's printed result
    # --- gold given as a whole solution ---
    (GSM8K_SOLUTION, "18", C),
    (GSM8K_SOLUTION, "The answer is 19", W),
    (MATH_SOLUTION, r"\frac{2}{3}", C),
    (MATH_SOLUTION, "0.6666667", C),
    # --- numbers with separators and units ---
    ("1000000", "1,000,000", C),
    ("5", "5 cm", C),
    ("18", r"\$18.00", C),
    (r"5\text{ cm}", "5", C),
    (r"\$1,000", "1000 dollars", C),
    (r"90^\circ", "90", C),
    # --- fractions and decimals ---
    (r"\frac{3}{4}", "0.75", C),
    (r"\frac34", "3/4", C),
    (r"-\frac{1}{2}", "-0.5", C),
    (r"\frac{1}{3}", "0.34", W),
    (r"\frac{\pi}{2}", "1.5707963", C),
    (r"\frac{\pi}{2}", "1.5708", W),
    ("10", "10.001", W),
    # --- LaTeX expressions ---
    ("2x+1", "1+2x", C),
    (r"3\sqrt{2}", r"\sqrt{18}", C),
    ("x^2+2x+1", "(x+1)^2", C),
    ("2", r"\sqrt{4}", C),
    ("2x+1", "2y+1", W),
    ("x=5", "5", C),
    ("y = 2x+1", "2x+1", C),
    (r"\pi", "3.14", W),
    # --- sets, tuples, intervals ---
    (r"\{1,2,3\}", r"\{3,2,1\}", C),
    (r"\{1,2\}", r"\{1,3\}", W),
    ("1,2", "2, 1", C),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", C),
    (r"(1, 2]", r"\left(1, 2\right]", C),
    (r"(-\infty, 3]", r"(-\infty, 3)", W),
    (r"x\in[1,2]", "[1,2]", C),
    # --- matrices ---
    (r"\begin{pmatrix}1 & 2\\3 & 4\end{pmatrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}", C),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}2\\1\end{pmatrix}", W),
    # --- percentages ---
    (r"10\%", "0.1", C),
    (r"25\%", r"\frac{1}{4}", C),
    (r"25\%", "25", C),
    # --- text answers ---
    (r"\text{Evelyn}", "Evelyn", C),
    (r"\text{(C)}", r"\text{(B)}", W),
    (r"\text{(C)}", "C", C),
    # --- adversarial: a hang that reproduces on a fresh worker (CPU time) is the side's fault:
    # the answer's (UNVERIFIABLE, judged, counts as wrong) or the gold's (BAD_GOLD) ---
    (HANG, "5", B),
    ("5", HANG, U),
    ("9^9^9^9", "5", W),  # unbraced: latex parses ((9^9)^9)^9, a 696-digit number, judged fast
    # --- adversarial: bad gold ---
    ("}{", "5", B),
    (r"\frac{", "1", B),
    ("@@@", "5", B),
    ("", "5", B),
    (None, "5", B),
    (r"\sqrt", "5", B),
    (r"\frac{}{}", "5", B),
    ("a long solution without any marked answer in it", "5", B),
    # --- no answer ---
    ("5", "", N),
    ("5", "   \n", N),
    ("5", None, N),
    ("5", r"\boxed{}", N),
    ("5", "x \\boxed{}\nThe answer is 5", N),  # a committed empty box
    ("5", "I don't know.", N),
    ("5", "no numbers in this sentence at all", N),
]


@pytest.mark.parametrize("gold,pred,expected", CASES)
def test_grade_table(grader, gold, pred, expected):
    v = grader.grade(gold, pred)
    assert v.status is expected, (v.reason, v.detail)
    assert v.detail["grader"] == GRADER_VERSION
    assert "gold" in v.detail and "pred" in v.detail
    if expected in (B, T):
        assert not v.correct


def test_detail_has_extracted_answers(grader):
    v = grader.grade(GSM8K_SOLUTION, "so she makes\n#### 18.00")
    assert v.correct
    assert v.detail["gold"] == "18" and v.detail["pred"] == "18.00"
    v = grader.grade(r"\frac12", "The answer is $0.5$.")
    assert v.detail["pred"] == "0.5" and v.detail["math_verify"]
    assert v.detail["gold_parsed"] == "1/2"
    json.dumps(v.to_dict())  # JSON-serialisable


def test_extract_false_takes_pred_as_the_answer(grader):
    # extract=False: the text is the answer itself, not a text whose last number is taken
    assert grader.grade("7", "the total is 7", extract=True).correct
    assert not grader.grade("7", "the total is 7", extract=False).correct
    assert grader.grade("7", "$7$", extract=False).correct


def test_fast_path_can_be_disabled():
    with Grader(GraderConfig(workers=1, string_fast_path=False)) as g:
        v = g.grade("18", "18")
        assert v.correct and v.reason.startswith("math-verify")


def test_grade_many_keeps_input_order(grader):
    pairs = [(rf"\frac{{{i}}}{{7}}", f"{i}/7" if i % 3 else f"{i + 1}/7") for i in range(40)]
    verdicts = grader.grade_many(pairs)
    assert [v.correct for v in verdicts] == [bool(i % 3) for i in range(40)]
    assert [v.detail["gold"] for v in verdicts] == [g for g, _ in pairs]


def test_grade_is_thread_safe(grader):
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        results[i] = grader.grade(str(i), f"{i}.0", extract=False).correct and not grader.grade(
            str(i), str(i + 1)
        ).correct

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: True for i in range(12)}


def test_timeout_kills_and_replaces_worker():
    with Grader(GraderConfig(timeout_s=1.0, workers=1)) as g:
        g.grade("1", "0.999999999", extract=False)  # wait until the worker is up
        (old,) = g.worker_pids()
        v = g.grade("5", HANG)
        assert v.status is U and v.detail["recheck"] == "cpu"
        assert v.detail["first_try"]["status"] == "timeout"
        assert g.restarts >= 2 and g.rechecks == 3  # the re-check and the two gold checks
        with pytest.raises(ProcessLookupError):
            os.kill(old, 0)  # the hung worker is gone (killed and reaped)
        assert g.grade(r"\frac{1}{2}", "0.5").correct  # the replacement works
        assert g.worker_pids() != [old]


def test_timeout_inside_a_batch_only_hits_that_item():
    with Grader(GraderConfig(timeout_s=1.5, workers=1, batch_size=8)) as g:
        pairs = [("1/2", "0.5"), ("5", HANG), ("2x", "x+x"), ("3", "4"), ("7", "7.0")]
        statuses = [v.status for v in g.grade_many(pairs, extract=False)]
        assert statuses == [C, U, C, W, C]  # the items after the hang went to the new worker


def _kill_workers_while(g: Grader, busy: threading.Thread, after_s: float = 0.5) -> set[int]:
    """SIGKILL every grader worker that has lived ``after_s`` while ``busy`` runs."""
    seen: dict[int, float] = {}
    killed: set[int] = set()
    while busy.is_alive():
        now = time.monotonic()
        for pid in g.worker_pids():
            if now - seen.setdefault(pid, now) >= after_s and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.05)
    return killed


def test_worker_killed_mid_item_once_is_rechecked_and_judged():
    with Grader(GraderConfig(timeout_s=2.0, workers=1)) as g:
        g.grade("1", "1.0000000001", extract=False)
        (pid,) = g.worker_pids()
        box: dict[str, object] = {}
        t = threading.Thread(target=lambda: box.setdefault("v", g.grade("7", "8.5")))
        t.start()
        t.join(timeout=60)
        assert box["v"].status is W  # type: ignore[union-attr]
        # killed from outside once, mid-item: the fresh worker's re-check decides
        t = threading.Thread(target=lambda: box.__setitem__("v", g.grade("5", HANG)))
        t.start()
        time.sleep(0.5)  # the worker is now stuck in the big power
        os.kill(pid, signal.SIGKILL)
        t.join(timeout=120)
        v = box["v"]
        assert v.detail["first_try"]["status"] == "error"  # type: ignore[union-attr]
        assert v.status is U  # type: ignore[union-attr]
        assert g.grade("2x+1", "1+2x").correct
        assert g.worker_pids() and g.worker_pids() != [pid]


def test_worker_killed_on_every_try_is_could_not_judge():
    with Grader(GraderConfig(timeout_s=30.0, workers=1)) as g:
        g.grade("1", "1.0000000001", extract=False)
        box: dict[str, object] = {}
        t = threading.Thread(target=lambda: box.setdefault("v", g.grade("5", HANG)))
        t.start()
        killed = _kill_workers_while(g, t)
        v = box["v"]
        assert len(killed) >= 2  # the first try's worker and the re-check's
        assert v.status is VerdictStatus.ERROR  # type: ignore[union-attr]
        assert "died too" in v.reason  # type: ignore[union-attr]


def test_a_starved_worker_is_could_not_judge_never_unverifiable(monkeypatch):
    """Machine load must not become a verdict: a re-check that gets no CPU time stays TIMEOUT."""
    import verimath.reasoning.grading as grading

    stopped: list[int] = []
    real_send = grading._Worker.send

    def send_then_starve(self, items):  # the worker gets the item, then never the CPU
        real_send(self, items)
        os.kill(self.pid, signal.SIGSTOP)
        stopped.append(self.pid)

    with Grader(GraderConfig(timeout_s=0.5, workers=1, retry_wall_factor=3)) as g:
        g.grade("1", "1.0000000001", extract=False)
        monkeypatch.setattr(grading._Worker, "send", send_then_starve)
        v = g.grade("2x", "x+x")
        assert v.status is T and v.detail["recheck"] == "overloaded"
        assert len(stopped) == 2  # the first try and the re-check, each starved
        monkeypatch.undo()
        assert g.grade("2x", "x+x").correct


def test_worker_dead_while_idle_is_replaced_transparently():
    with Grader(GraderConfig(workers=1)) as g:
        assert g.grade("3", "3.0", extract=False).correct
        (pid,) = g.worker_pids()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        assert g.grade("x+1", "1+x").correct  # retried on a fresh worker, not an ERROR


def test_close_kills_workers_and_refuses_more_work():
    g = Grader(GraderConfig(workers=2))
    assert g.grade("2", "2.0", extract=False).correct
    pids = g.worker_pids()
    assert len(pids) == 2
    g.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(GraderClosed) as e:  # a caller bug, not could-not-judge
        g.grade("1", "2")
    assert not isinstance(e.value, GraderUnavailable)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout_s": 0},
        {"workers": 0},
        {"memory_mb": 10},
        {"start_timeout_s": -1},
        {"batch_size": 0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        GraderConfig(**kwargs)


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_every_math500_gold_grades_correct_against_itself(shared_data):
    """All 500 golds through math-verify (fast path off): parseable and self-equivalent."""
    rows = _rows(shared_data / "math500" / "test.jsonl")
    pairs = [(r["answer"], extract_gold(r["answer"], "math500")) for r in rows]
    assert all(p for _, p in pairs)
    with Grader(GraderConfig(timeout_s=20.0, workers=2, string_fast_path=False)) as g:
        verdicts = g.grade_many(pairs, extract=False)
    bad = [(v.status, v.detail["gold"]) for v in verdicts if not v.correct]
    assert not bad


def test_gsm8k_golds_grade_against_model_style_answers(shared_data, grader):
    rows = _rows(shared_data / "gsm8k" / "test.jsonl")[:100]
    pairs = [(r["answer"], f"Let me compute.\nThe answer is {extract_gold(r['answer'], 'gsm8k')}.")
             for r in rows]
    assert all(v.correct for v in grader.grade_many(pairs))


def test_grade_attempts_cot_from_text_pot_tir_from_stored_answer(grader):
    """CoT attempts are graded from their whole text (math-verify sees it raw); attempts with
    tool calls from their stored answer, so numbers in tool output never become an answer."""
    from verimath.reasoning.grading import grade_attempts
    from verimath.records import Attempt, ToolCall

    call = ToolCall(code="print(41)", status="ok", output="41\n", wall_time_s=0.0)
    cot_text = "So $x \\geq 5$ is the solution."
    pairs = [
        ("x >= 5", Attempt(text=cot_text, answer=None)),                 # text is what counts
        ("42", Attempt(text="```python\nprint(41)\n```\n\\boxed{42}", tool_calls=(call,),
                       answer="41")),                                    # the program said 41
        ("41", Attempt(text="```output\n41\n```", tool_calls=(call,), answer=None)),
        ("7", Attempt(text="The answer is 7.", answer="7")),
    ]
    got = [v.status for v in grade_attempts(grader, pairs)]
    assert got == [VerdictStatus.CORRECT, VerdictStatus.WRONG, VerdictStatus.NO_ANSWER,
                   VerdictStatus.CORRECT]


@pytest.mark.parametrize("gold,pred,expected", [
    # an unparseable box must not let math-verify's raw fallback pick a guess from the reasoning
    ("4", r"Let $n=4$. Then the count is \boxed{12{:}00}", VerdictStatus.WRONG),
    ("3", r"The train takes 3 hours, so it arrives at \boxed{12{:}00}.", VerdictStatus.WRONG),
    # a parser crash (RecursionError inside math-verify) that reproduces on a fresh worker is
    # the answer's fault: UNVERIFIABLE (judged, not correct), never "did not parse" (WRONG)
    ("3", r"We have $x=3$ so \boxed{" + "(" * 100 + "1" + ")" * 100 + "}",
     VerdictStatus.UNVERIFIABLE),
    # raw extraction still helps where there is no box, and sees all the boxes where there are
    ("x >= 5", r"Therefore $x \geq 5$ is the solution.", VerdictStatus.CORRECT),
    ("-3, 2", r"The roots are $x = \boxed{-3}$ and $x = \boxed{2}$.", VerdictStatus.CORRECT),
    ("2", r"I think \boxed{2}... no wait, it is \boxed{3}.", VerdictStatus.WRONG),
])
def test_raw_extraction_only_adds_correct_where_the_model_committed_to_nothing(
        grader, gold, pred, expected):
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert grader.grade(gold, pred).status in allowed


def test_raw_candidates_cannot_turn_an_all_raised_comparison_into_wrong():
    from verimath.reasoning._grade_worker import _Judge

    j = _Judge({})
    assert j.judge("12:00", "1:00")["status"] == "error"
    raw = "After 5 steps we get 1:00. Answer: 1:00"
    assert j.judge("12:00", "1:00", pred_raw=raw)["status"] == "error"
    assert j.judge("1", "(" * 200 + "1" + ")" * 200)["status"] == "error"


def _throttle(g: Grader, stop: threading.Event, run_s: float = 0.03, period_s: float = 0.1
              ) -> None:
    """Give every grader worker ``run_s / period_s`` of a CPU, as a loaded machine would: a
    SIGSTOP / SIGCONT duty cycle (deterministic, unlike competing for a CPU with hogs)."""
    while not stop.is_set():
        pids = g.worker_pids()
        time.sleep(run_s)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        time.sleep(period_s - run_s)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_a_loaded_machine_never_turns_honest_answers_into_unverifiable():
    """Grader workers that get 30% of a CPU (:func:`_throttle`): comparisons that take 50-70 ms
    of CPU outlast a 0.15 s ``timeout_s`` on their first try; the re-check counts CPU time, so
    they are judged (or, at worst, could not be judged), never UNVERIFIABLE."""
    cfg = GraderConfig(timeout_s=0.15, workers=1, string_fast_path=False, batch_size=1,
                       retry_wall_factor=40)
    pairs = [("x^2-1", "(x-1)(x+1)"), (r"\sin^2 x + \cos^2 x", "1"), (r"\frac{1}{2}", "0.5"),
             ("3", "4")]
    stop = threading.Event()
    with Grader(cfg) as g:
        g.grade("1", "1.0", extract=False)  # the worker is up before the load starts
        t = threading.Thread(target=_throttle, args=(g, stop), daemon=True)
        t.start()
        try:
            verdicts = [g.grade(gold, pred, extract=False) for gold, pred in pairs]
        finally:
            stop.set()
            t.join(timeout=10)
            for pid in g.worker_pids():
                os.kill(pid, signal.SIGCONT)
    statuses = [v.status for v in verdicts]
    assert U not in statuses, [(v.status, v.reason) for v in verdicts]
    assert statuses == [C, C, C, W], verdicts
    assert any("first_try" in v.detail for v in verdicts[:2])  # the load did slow a first try
