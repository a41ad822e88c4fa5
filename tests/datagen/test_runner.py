"""The resumable stage runner: skip done keys, torn lines, fingerprints, pipelining, order."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from verimath.datagen.funnel import Funnel
from verimath.datagen.runner import Outcome, StageRunner, reject
from verimath.jobs import SettingsMismatch


class Square:
    """Keeps even numbers squared; rejects odd ones. Counts how often each item was processed."""

    name = "square"
    unit_in = "numbers"
    unit_out = "squares"
    batch_size = 3

    def __init__(self, fp: str = "v1", fail_at: int | None = None) -> None:
        self.fingerprint = fp
        self.seen: list[int] = []
        self.fail_at = fail_at
        self.prepared = 0

    def prepare(self, items: list[dict[str, Any]], todo: list[dict[str, Any]]) -> None:
        self.prepared += 1

    def process(self, items: list[dict[str, Any]]) -> list[Outcome]:
        outs = []
        for it in items:
            x = it["x"]
            if self.fail_at is not None and x == self.fail_at:
                raise KeyboardInterrupt
            self.seen.append(x)
            if x % 2:
                outs.append(Outcome(rejected=[reject(it, f"odd: {x} is odd", self.unit_in)]))
            else:
                outs.append(Outcome(kept=[{"key": f"sq{x}", "y": x * x}]))
        return outs


class SlowPipelined(Square):
    """generate/verify split; verification is slower for early batches (out-of-order risk)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def generate(self, items: list[dict[str, Any]]) -> list[int]:
        time.sleep(0.01)
        return [it["x"] for it in items]

    def verify(self, items: list[dict[str, Any]], xs: list[int]) -> list[Outcome]:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.03 if xs[0] < 6 else 0.0)
        return self.process(items)


def items(n: int) -> list[dict[str, Any]]:
    return [{"key": f"k{i}", "x": i} for i in range(n)]


def test_outputs_in_input_order_and_counted(tmp_path) -> None:
    funnel = Funnel()
    res = StageRunner(tmp_path, funnel).run(Square(), items(7))
    assert [it["y"] for it in res.kept] == [0, 4, 16, 36]
    assert [r["reason"] for r in res.rejected] == [f"odd: {x} is odd" for x in (1, 3, 5)]
    c = funnel.get("square")
    assert c is not None
    assert (c.entered, c.left, c.dropped, c.produced) == (7, 4, {"odd": 3}, 4)
    lines = (tmp_path / "stages" / "square.jsonl").read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[0])["input"] == "k0"


def test_resume_skips_done_items_and_gives_identical_results(tmp_path) -> None:
    first = Square(fail_at=5)
    with pytest.raises(KeyboardInterrupt):
        StageRunner(tmp_path, Funnel()).run(first, items(9))
    assert first.seen == [0, 1, 2, 3, 4]  # batch [3, 4, 5] died at 5: 3 and 4 not stored
    again = Square()
    res = StageRunner(tmp_path, Funnel()).run(again, items(9))
    assert again.seen == [3, 4, 5, 6, 7, 8]
    fresh = StageRunner(tmp_path / "fresh", Funnel()).run(Square(), items(9))
    assert res.kept == fresh.kept and res.rejected == fresh.rejected
    third = Square()
    StageRunner(tmp_path, Funnel()).run(third, items(9))
    assert third.seen == [] and third.prepared == 0  # nothing left: not even prepared


def test_torn_last_line_is_redone(tmp_path) -> None:
    StageRunner(tmp_path, Funnel()).run(Square(), items(4))
    path = tmp_path / "stages" / "square.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 10])  # kill -9 in the middle of the last write
    again = Square()
    res = StageRunner(tmp_path, Funnel()).run(again, items(4))
    assert again.seen == [3]
    assert [it["y"] for it in res.kept] == [0, 4]
    assert len(path.read_text().splitlines()) == 4


def test_changed_settings_are_refused_naming_the_key(tmp_path) -> None:
    first = Square("v1")
    first.settings = {"solve.n": 4, "@prompt_hash": "abc"}
    StageRunner(tmp_path, Funnel()).run(first, items(3))
    changed = Square("v2")
    changed.settings = {"solve.n": 8, "@prompt_hash": "abc"}
    with pytest.raises(SettingsMismatch, match="solve.n") as e:
        StageRunner(tmp_path, Funnel()).run(changed, items(3))
    assert e.value.keys == ["solve.n"] and changed.seen == []
    plain = Square("v3")  # a stage without settings is checked on its fingerprint
    with pytest.raises(SettingsMismatch):
        StageRunner(tmp_path, Funnel()).run(plain, items(3))


class Flaky(Square):
    """Square whose items in ``broken`` hit an infrastructure failure (could not judge)."""

    def __init__(self, broken: set[int]) -> None:
        super().__init__()
        self.broken = broken

    def process(self, items: list[dict[str, Any]]) -> list[Outcome]:
        outs = super().process(items)
        for it, o in zip(items, outs, strict=True):
            if it["x"] in self.broken:
                outs[outs.index(o)] = Outcome(
                    rejected=[reject(it, "sandbox_error: lost interpreter", self.unit_in)],
                    unjudged=["sandbox_error"])
        return outs


def test_unjudged_outcomes_are_retried_on_resume_a_bounded_number_of_times(tmp_path) -> None:
    funnel = Funnel()
    res = StageRunner(tmp_path, funnel, retries=2).run(Flaky({2, 4}), items(5))
    assert [it["y"] for it in res.kept] == [0] and funnel.get("square").unjudged == 2
    again = Flaky({4})  # 2 works now; 4 is still broken
    res = StageRunner(tmp_path, funnel, retries=2).run(again, items(5))
    assert again.seen == [2, 4]
    assert [it["y"] for it in res.kept] == [0, 4] and funnel.get("square").unjudged == 1
    third = Flaky({4})
    StageRunner(tmp_path, funnel, retries=2).run(third, items(5))
    assert third.seen == [4]  # third and last try of item 4
    last = Flaky(set())
    res = StageRunner(tmp_path, funnel, retries=2).run(last, items(5))
    assert last.seen == [] and funnel.get("square").unjudged == 1  # retries spent: reported
    assert [r["reason"] for r in res.rejected].count("sandbox_error: lost interpreter") == 1
    more = Flaky(set())  # a larger retry budget picks it up again
    res = StageRunner(tmp_path, funnel, retries=3).run(more, items(5))
    assert more.seen == [4] and [it["y"] for it in res.kept] == [0, 4, 16]


def test_more_items_later_only_runs_the_new_ones(tmp_path) -> None:
    StageRunner(tmp_path, Funnel()).run(Square(), items(3))
    more = Square()
    res = StageRunner(tmp_path, Funnel()).run(more, items(6))
    assert more.seen == [3, 4, 5]
    assert [it["y"] for it in res.kept] == [0, 4, 16]


def test_pipelined_stage_verifies_on_a_worker_and_keeps_order(tmp_path) -> None:
    stage = SlowPipelined()
    runner = StageRunner(tmp_path, Funnel(), max_inflight=2)
    res = runner.run(stage, items(12))
    assert [it["y"] for it in res.kept] == [x * x for x in range(0, 12, 2)]
    assert all(t.startswith("verify-square") for t in stage.threads)
    assert runner.timer.seconds["generate"] > 0 and runner.timer.seconds["verify"] > 0


def test_duplicate_keys_are_an_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        StageRunner(tmp_path, Funnel()).run(Square(), [{"key": "a", "x": 1}] * 2)


class LostInterpreter(Square):
    """Rejects with an infrastructure reason but, like SynthStage before issue 18, never marks
    the outcome unjudged; the engine must."""

    name = "lost"
    uses_verifiers = True

    def process(self, items: list[dict[str, Any]]) -> list[Outcome]:
        self.seen += [it["x"] for it in items]
        return [Outcome(rejected=[reject(it, "sandbox_error: the interpreter was lost",
                                         self.unit_in)]) for it in items]


def test_the_engine_marks_infrastructure_rejections_unjudged_and_retries_them(tmp_path):
    items = [{"key": f"k{i}", "x": i} for i in range(3)]
    stage = LostInterpreter()
    res = StageRunner(tmp_path, Funnel(), retries=1).run(stage, items)
    assert res.counts.unjudged == 3
    again = LostInterpreter()
    StageRunner(tmp_path, Funnel(), retries=1).run(again, items)
    assert again.seen == [0, 1, 2]  # retried on resume, not a final rejection


def test_verifier_settings_join_the_settings_of_stages_that_use_verifiers(tmp_path):
    items = [{"key": f"k{i}", "x": i} for i in range(2)]
    StageRunner(tmp_path, Funnel(), verifier_settings={"sandbox.timeout_s": 5.0}).run(
        LostInterpreter(), items)
    with pytest.raises(SettingsMismatch, match="sandbox.timeout_s"):
        StageRunner(tmp_path, Funnel(), verifier_settings={"sandbox.timeout_s": 9.0}).run(
            LostInterpreter(), items)
    # a stage that does not use the verifiers is not keyed by their settings
    StageRunner(tmp_path / "b", Funnel(), verifier_settings={"sandbox.timeout_s": 5.0}).run(
        Square(), items)
    StageRunner(tmp_path / "b", Funnel(), verifier_settings={"sandbox.timeout_s": 9.0}).run(
        Square(), items)
