"""Informal solving end to end: scripted model, real sandbox, real grader; kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.datagen.helpers import informal_config, many_problems, pot_policy, write_problems
from verimath.datagen.pipeline import Components, main
from verimath.testing import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_gold_and_self_consistency_with_reasons(tmp_path) -> None:
    cfg = informal_config(tmp_path / "out", write_problems(tmp_path / "in.jsonl"))
    report = main(cfg, components=Components(backend=ScriptedBackend(pot_policy)))
    out = tmp_path / "out"
    rows = _lines(out / "data.jsonl")
    by = {}
    for r in rows:
        by.setdefault(r["problem_id"], []).append(r)
    assert sorted(by) == ["q0", "q1", "q2"]
    assert [r["verified_by"] for r in by["q0"]] == ["gold", "gold"]
    assert [r["provenance"]["sample_index"] for r in by["q0"]] == [0, 1]
    assert by["q1"][0]["verdicts"]["grader"]["status"] == "correct"  # 2.5 == 5/2 (math-verify)
    sc = by["q2"]
    assert [r["verified_by"] for r in sc] == ["self_consistency"] * 3
    assert sc[0]["answer"] == "12"
    assert sc[0]["verdicts"]["self_consistency"]["detail"]["votes"] == 3
    r0 = rows[0]
    assert r0["kind"] == "pot" and r0["messages"][-1]["role"] == "assistant"
    assert r0["messages"][0]["role"] == "system" and len(r0["messages"]) == 3  # few-shot dropped
    assert "".join(s["text"] for s in r0["spans"]) == r0["messages"][-1]["content"]
    assert r0["provenance"]["tool_calls"][0]["status"] == "ok"
    assert "wall_time_s" not in r0["provenance"]["tool_calls"][0]

    rejected = _lines(out / "rejected.jsonl")
    attempt_reasons = {r["reason"] for r in rejected if r["unit"] == "attempts"}
    assert attempt_reasons >= {"wrong", "no_answer", "duplicate_attempt", "minority_answer",
                               "no_majority"}
    problem_level = [r for r in rejected if r["unit"] == "problems"]
    assert sorted(r["record"]["problem"]["id"] for r in problem_level) == ["q3", "q4"]
    assert any(r["reason"].startswith("bad_record") for r in rejected)

    f = {s.stage: s for s in report.funnel.stages}
    assert (f["load"].entered, f["load"].left) == (6, 5)
    assert (f["solve"].entered, f["solve"].left, f["solve"].produced) == (5, 3, 6)
    assert f["solve"].dropped == {"no verified attempt": 2}
    assert sum(f["solve"].rejected_out.values()) == 25 - 6
    assert report.counts["verified"] == 6
    assert report.timing["total"] > 0 and "verify" in report.timing
    assert (out / "funnel.png").exists() and (out / "data.parquet").exists()
    assert (out / "hf_dataset").is_dir()


def test_majority_threshold_is_configurable(tmp_path) -> None:
    inp = write_problems(tmp_path / "in.jsonl")
    cfg = informal_config(tmp_path / "out", inp, majority=0.8)
    report = main(cfg, components=Components(backend=ScriptedBackend(pot_policy)))
    rows = _lines(tmp_path / "out" / "data.jsonl")
    assert "q2" not in {r["problem_id"] for r in rows}  # 3/5 < 0.8
    assert report.counts["verified"] == 3


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def test_kill_9_mid_run_then_resume_equals_uninterrupted_run(tmp_path) -> None:
    inp = many_problems(tmp_path / "in.jsonl", 14)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.datagen.helpers", str(killed), inp, "0.4"],
        cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    stage_file = killed / "stages" / "solve.jsonl"
    try:
        _wait_for_lines(stage_file, 4, proc, timeout_s=90)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: sandbox and grader workers too
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_before = len(stage_file.read_bytes().splitlines())
    assert 4 <= done_before < 14, "the kill must land mid-run"
    assert not (killed / "data.jsonl").exists()

    backend = ScriptedBackend(pot_policy)
    cfg = informal_config(killed, inp, n=4)
    resumed = main(cfg, components=Components(backend=backend))
    asked = sum(len(prompts) for prompts, _ in backend.calls)
    assert asked == 14 - done_before  # only the missing problems were generated again
    full = main(informal_config(tmp_path / "full", inp, n=4),
                components=Components(backend=ScriptedBackend(pot_policy)))

    for name in ("data.jsonl", "rejected.jsonl"):
        assert (killed / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    a = _lines(killed / "stages" / "solve.jsonl")
    assert len(a) == 14 and len({r["key"] for r in a}) == 14  # nothing duplicated
    assert [s.to_dict() for s in resumed.funnel.stages] == [s.to_dict() for s in
                                                            full.funnel.stages]
    assert resumed.counts["verified"] == 14 * 2  # even samples are right


@pytest.mark.parametrize("strategy", ["tir"])
def test_tir_trajectories_keep_tool_spans(tmp_path, strategy: str) -> None:
    from dataclasses import replace

    from verimath.reasoning.rollout import RolloutConfig
    from verimath.testing import assistant_so_far, question_of

    def tir_policy(prompt, j, params) -> str:
        so_far = assistant_so_far(prompt)
        if "```output" not in so_far:
            return "Compute it.\n```python\nprint(2 + 3)\n```\n"
        return "So the answer is \\boxed{5}." if question_of(prompt) == "What is 2+3?" else "?"

    inp = write_problems(tmp_path / "in.jsonl")
    cfg = replace(informal_config(tmp_path / "out", inp, n=1),
                  rollout=RolloutConfig(strategy=strategy, batch_problems=2))
    report = main(cfg, components=Components(backend=ScriptedBackend(tir_policy)))
    rows = _lines(tmp_path / "out" / "data.jsonl")
    assert [r["problem_id"] for r in rows] == ["q0"] and report.counts["verified"] == 1
    kinds = [s["kind"] for s in rows[0]["spans"]]
    assert kinds == ["model", "tool", "model"] and rows[0]["kind"] == "tir"
    assert rows[0]["spans"][1]["text"].startswith("```output\n5")
