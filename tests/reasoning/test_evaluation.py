"""`verimath eval` end to end with a scripted policy, the real sandbox and the real grader."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from verimath.config import ConfigError, load_config
from verimath.datasets import load_problems
from verimath.reasoning.evaluation import EvalConfig, main
from verimath.testing import ScriptedBackend, question_of


def gold_policy(data_dir, wrong_every=3):
    """A PoT 'model' that prints the gold answer, except for every `wrong_every`-th problem."""
    problems = load_problems(str(data_dir / "gsm8k" / "test.jsonl"), limit=12).problems
    answers = {p.informal: (p.answer, i) for i, p in enumerate(problems)}

    def policy(prompt, j, params):
        gold, i = answers[question_of(prompt)]
        value = int(gold) + 1 if i % wrong_every == 0 else gold
        return f"```python\nprint({value})\n```"

    return policy


def make_cfg(tmp_path, data_dir, **kw):
    base = dict(benchmark=str(data_dir / "gsm8k" / "test.jsonl"), limit=6, out=str(tmp_path / "o"),
                rollout={"strategy": "pot", "batch_problems": 2},
                sandbox={"timeout_s": 3.0, "workers": 2})
    base.update(kw)
    return load_config(EvalConfig, None, [f"{k}={json.dumps(v)}" for k, v in base.items()])


def strip_timing(rec):
    rec = dict(rec)
    rec.pop("seconds")
    for a in rec["attempts"]:
        a["verdict"]["detail"].pop("elapsed_s", None)
        for t in a["tool_calls"]:
            t.pop("wall_time_s")
    return rec


def test_eval_scores_and_writes_everything(tmp_path, shared_data):
    cfg = make_cfg(tmp_path, shared_data)
    rep = main(cfg, progress=False, backend=ScriptedBackend(gold_policy(shared_data)))
    s = rep.summary
    # problems 0 and 3 get gold+1 -> 4 of 6 correct
    assert s["n_problems"] == 6 and s["accuracy"] == pytest.approx(4 / 6)
    assert s["pass@k"]["1"] == pytest.approx(4 / 6)
    lo, hi = s["accuracy_ci95"]
    assert lo < 4 / 6 < hi
    out = rep.out
    for f in ("records.jsonl", "summary.json", "manifest.json", "results.parquet",
              "pass_at_k.png", "errors.jsonl"):
        assert (out / f).exists(), f
    man = json.loads((out / "manifest.json").read_text())
    assert man["prompt_hash"] and man["grader_version"] and man["isolation"]
    assert s["isolation"] == man["isolation"]  # shown in the CLI summary too (issue 11)
    assert man["packages"]["torch"]
    rec = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    assert rec["attempts"][0]["verdict"]["status"] == "wrong"
    assert rec["attempts"][0]["tool_calls"][0]["status"] == "ok"


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, shared_data):
    ref = main(make_cfg(tmp_path / "ref", shared_data), progress=False,
               backend=ScriptedBackend(gold_policy(shared_data)))
    ref_recs = [strip_timing(json.loads(x)) for x in
                (ref.out / "records.jsonl").read_text().splitlines()]
    out = tmp_path / "killed" / "o"
    script = textwrap.dedent(f"""
        import json, pathlib, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_evaluation import make_cfg, gold_policy
        from verimath.reasoning.evaluation import main
        from verimath.testing import ScriptedBackend
        d = pathlib.Path({str(shared_data)!r})
        main(make_cfg(pathlib.Path({str(tmp_path / "killed")!r}), d), progress=False,
             backend=ScriptedBackend(gold_policy(d), delay_s=1.0))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    recs = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if recs.exists() and recs.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done_before = recs.read_text().count("\n")
    assert 2 <= done_before < 6, "kill should land mid-run"
    backend = ScriptedBackend(gold_policy(shared_data))
    rep = main(make_cfg(tmp_path / "killed", shared_data), progress=False, backend=backend)
    got = [strip_timing(json.loads(x)) for x in recs.read_text().splitlines()]
    assert sorted(got, key=lambda r: r["id"]) == sorted(ref_recs, key=lambda r: r["id"])
    asked = sum(len(p) for p, _ in backend.calls)
    assert asked == 6 - done_before  # only the unfinished problems were generated again
    assert rep.summary == {**ref.summary, "model": rep.summary["model"]}


def test_different_settings_in_same_out_are_refused(tmp_path, shared_data):
    main(make_cfg(tmp_path, shared_data, limit=2), progress=False,
         backend=ScriptedBackend(gold_policy(shared_data)))
    with pytest.raises(ValueError, match="different settings"):
        main(make_cfg(tmp_path, shared_data, limit=2, temperature=0.5), progress=False,
             backend=ScriptedBackend(gold_policy(shared_data)))


@pytest.mark.parametrize("change,key", [
    ({"sandbox": {"timeout_s": 2.0, "workers": 2}}, "sandbox.timeout_s"),  # the README example
    ({"grader": {"float_rounding": 3}}, "grader.float_rounding"),
])
def test_a_changed_setting_is_refused_naming_it_and_manifest_is_kept(tmp_path, shared_data,
                                                                     change, key):
    cot = {"strategy": "cot"}  # no sandbox needed: the check is on the settings
    main(make_cfg(tmp_path, shared_data, limit=2, rollout=cot), progress=False,
         backend=ScriptedBackend(gold_policy(shared_data)))
    man = (tmp_path / "o" / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        main(make_cfg(tmp_path, shared_data, limit=2, rollout=cot, **change), progress=False,
             backend=ScriptedBackend(gold_policy(shared_data)))
    assert (tmp_path / "o" / "manifest.json").read_bytes() == man
    # settings that cannot change results (worker counts, a larger limit) resume fine
    rep = main(make_cfg(tmp_path, shared_data, limit=3, rollout=cot,
                        sandbox={"timeout_s": 3.0, "workers": 1}),
               progress=False, backend=ScriptedBackend(gold_policy(shared_data)))
    assert rep.n_problems == 3


def test_bad_records_reported_not_fatal(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "What is 2+2?", "answer": "4"}\n{"question": 7}\nnot json\n')
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'o'}",
                                         "rollout.strategy=cot"])
    rep = main(cfg, progress=False, backend=ScriptedBackend(lambda p, j, s: "\\boxed{4}"))
    assert rep.n_problems == 1 and rep.n_bad_records == 2
    errs = [json.loads(x) for x in (rep.out / "errors.jsonl").read_text().splitlines()]
    assert {(e["where"].rsplit(":", 1)[1], e["field"]) for e in errs} == {("2", "question"),
                                                                           ("3", "<line>")}
    assert rep.summary["accuracy"] == 1.0


def test_infra_failures_are_excluded_not_wrong(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "What is 2+2?", "answer": "4"}\n'
                    '{"question": "What is 3+3?", "answer": "6"}\n')
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'o'}",
                                         "rollout.strategy=pot"])

    class BrokenSandboxPolicy:
        def __call__(self, p, j, s):
            return "```python\nprint(4)\n```"

    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    real_run = sbmod.Sandbox.run

    def flaky(self, code, **kw):
        if "print(4)" in code and "flag" not in flaky.__dict__:
            flaky.flag = True
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "test")
        return real_run(self, code, **kw)

    sbmod.Sandbox.run = flaky
    try:
        rep = main(cfg, progress=False, backend=ScriptedBackend(BrokenSandboxPolicy()))
    finally:
        sbmod.Sandbox.run = real_run
    s = rep.summary
    assert s["n_infra_failures"] == 1 and s["n_judged"] == 1
    assert s["accuracy"] == 0.0  # only the judged problem (3+3 answered 4) counts
    assert len((rep.out / "records.jsonl").read_text().splitlines()) == 1  # one is final
    # a resume runs the unjudged problem again (the sandbox works now), only that one
    backend = ScriptedBackend(BrokenSandboxPolicy())
    again = main(cfg, progress=False, backend=backend)
    assert sum(len(p) for p, _ in backend.calls) == 1
    assert again.summary["n_infra_failures"] == 0 and again.summary["accuracy"] == 0.5
    assert len((rep.out / "records.jsonl").read_text().splitlines()) == 2


def test_unjudged_records_are_final_once_the_retries_are_spent(tmp_path, monkeypatch):
    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "What is 2+2?", "answer": "4"}\n')
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'o'}",
                                         "rollout.strategy=pot", "infra_retries=1"])
    monkeypatch.setattr(sbmod.Sandbox, "run", lambda self, code, **kw: ExecResult(
        ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "test"))
    asked = []
    for _ in range(3):
        backend = ScriptedBackend(lambda p, j, s: "```python\nprint(4)\n```")
        rep = main(cfg, progress=False, backend=backend)
        asked.append(sum(len(p) for p, _ in backend.calls))
        assert rep.summary["n_infra_failures"] == 1  # reported, never scored
    assert asked == [1, 1, 0]


def test_config_rejects_k_above_n():
    with pytest.raises(ConfigError, match="k="):
        load_config(EvalConfig, None, ["n=2", "k=[1, 8]"])


def test_cli_refuses_a_changed_sandbox_timeout_naming_it(tmp_path, shared_data, capsys):
    from verimath.cli import main as cli

    cfg = make_cfg(tmp_path, shared_data, limit=2)
    main(cfg, progress=False, backend=ScriptedBackend(gold_policy(shared_data)))
    man = (tmp_path / "o" / "manifest.json").read_bytes()
    recs = (tmp_path / "o" / "records.jsonl").read_bytes()
    argv = ["eval", "--benchmark", cfg.benchmark, "--limit", "2", "--out", cfg.out,
            "--no-progress", "rollout.strategy=pot", "rollout.batch_problems=2",
            "sandbox.workers=2"]
    assert cli([*argv, "sandbox.timeout_s=2"]) == 2  # the README's example: a 2 s limit
    err = capsys.readouterr().err
    assert "sandbox.timeout_s: stored 3.0, now 2.0" in err
    assert (tmp_path / "o" / "manifest.json").read_bytes() == man
    assert (tmp_path / "o" / "records.jsonl").read_bytes() == recs


def test_three_shards_merged_equal_one_unsharded_run(tmp_path, shared_data):
    import pyarrow.parquet as pq

    from verimath.cli import main as cli
    from verimath.jobs import shard_of

    small = {"timeout_s": 3.0, "workers": 1}  # 4 runs: one sandbox worker each is enough
    whole = main(make_cfg(tmp_path / "whole", shared_data, sandbox=small), progress=False,
                 backend=ScriptedBackend(gold_policy(shared_data)))
    outs = []
    for i in range(3):
        cfg = make_cfg(tmp_path / f"s{i}", shared_data, shard=f"{i}/3", sandbox=small)
        rep = main(cfg, progress=False, backend=ScriptedBackend(gold_policy(shared_data)))
        ids = [json.loads(x)["id"] for x in (rep.out / "records.jsonl").read_text().splitlines()]
        assert all(shard_of(x, 3) == i for x in ids)
        outs.append(str(rep.out))
    merged = tmp_path / "merged"
    assert cli(["merge", *outs, "--out", str(merged)]) == 0
    got = [strip_timing(json.loads(x)) for x in (merged / "records.jsonl").read_text().splitlines()]
    ref = [strip_timing(json.loads(x)) for x in
           (whole.out / "records.jsonl").read_text().splitlines()]
    assert got == ref  # same records, in the same (benchmark) order
    assert json.loads((merged / "summary.json").read_text()) == whole.summary
    assert (merged / "errors.jsonl").read_bytes() == (whole.out / "errors.jsonl").read_bytes()
    cols = ["id", "sample", "gold", "answer", "status", "correct", "text"]
    a, b = (pq.read_table(d / "results.parquet").to_pandas()[cols] for d in (merged, whole.out))
    assert a.equals(b) and len(a) == 6
    assert (merged / "pass_at_k.png").exists()


def _cot_shards(tmp_path, shared_data, specs, limit=3, **kw):
    """Small CoT shard runs (no sandbox): the merge checks do not need real results."""
    outs = {}
    for spec in specs:
        cfg = make_cfg(tmp_path / spec.replace("/", "of"), shared_data, limit=limit, shard=spec,
                       rollout={"strategy": "cot"}, **kw)
        main(cfg, progress=False, backend=ScriptedBackend(lambda p, j, s: "\\boxed{1}"))
        outs[spec] = cfg.out
    return outs


def test_merge_refuses_gaps_overlaps_and_unsharded_folders(tmp_path, shared_data, capsys):
    from verimath.cli import main as cli

    o = _cot_shards(tmp_path, shared_data, ["0/3", "1/3"])
    for args, message in [([o["0/3"], o["1/3"]], "missing: [2]"),
                          ([o["0/3"], o["1/3"], o["1/3"]], "given twice: [1]")]:
        assert cli(["merge", *args, "--out", str(tmp_path / "m")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "m" / "records.jsonl").exists()


def test_merge_refuses_shards_with_different_settings(tmp_path, shared_data, capsys):
    from verimath.cli import main as cli

    a = _cot_shards(tmp_path / "a", shared_data, ["0/2"])
    b = _cot_shards(tmp_path / "b", shared_data, ["1/2"], temperature=0.5)
    assert cli(["merge", a["0/2"], b["1/2"], "--out", str(tmp_path / "m")]) == 2
    assert "different settings: temperature" in capsys.readouterr().err


def test_merge_refuses_shards_cut_from_different_problem_sets(tmp_path, shared_data, capsys):
    """`limit` is not a result setting, so only the recorded item set catches this."""
    from verimath.cli import main as cli

    a = _cot_shards(tmp_path / "a", shared_data, ["0/2"], limit=3)
    b = _cot_shards(tmp_path / "b", shared_data, ["1/2"], limit=5)
    assert cli(["merge", a["0/2"], b["1/2"], "--out", str(tmp_path / "m")]) == 2
    assert "different problem sets" in capsys.readouterr().err
    assert not (tmp_path / "m" / "records.jsonl").exists()


def test_bad_shard_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="0 <= I < N"):
        load_config(EvalConfig, None, ["shard=3/3"])


def test_a_damaged_middle_record_is_redone_and_the_rest_kept_byte_for_byte(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)})
                            + "\n" for i in range(4)))
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'o'}",
                                         "rollout.strategy=cot"])
    policy = lambda p, j, s: "\\boxed{" + str(2 * int(question_of(p).split("+")[1][:-1])) + "}"  # noqa: E731
    main(cfg, progress=False, backend=ScriptedBackend(policy))
    recs = tmp_path / "o" / "records.jsonl"
    lines = recs.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][: len(lines[1]) // 2] + b"\n"  # line 2 damaged, 3 and 4 intact
    damaged = b"".join(lines)
    recs.write_bytes(damaged)
    backend = ScriptedBackend(policy)
    rep = main(cfg, progress=False, backend=backend)
    assert sum(len(p) for p, _ in backend.calls) == 1  # only the damaged problem is redone
    after = recs.read_bytes()
    assert after.startswith(damaged)  # nothing cut, records 3 and 4 kept byte for byte
    assert rep.summary["n_problems"] == 4 and rep.summary["accuracy"] == 1.0
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert man["damaged_record_lines"] == [2]  # reported with its line number


def test_answers_and_programs_that_break_the_verifier_are_judged_wrong(tmp_path):
    """Issue 18 in eval: an answer that hangs the grader on every try is UNVERIFIABLE (judged,
    wrong, counted as ``n_unverifiable``); a program's own endless loop is a judged wrong
    sample; neither is an infrastructure failure."""
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "a", "question": "What is 3+4?", "answer": "7"}\n'
                    '{"id": "b", "question": "What is 2+5?", "answer": "7"}\n'
                    '{"id": "c", "question": "What is 1+6?", "answer": "7"}\n')
    answers = {"What is 3+4?": r"So \boxed{9^{9^{9^{9}}}}", "What is 2+5?": r"\boxed{7}",
               "What is 1+6?": r"\boxed{7}"}
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'cot'}",
                                         "rollout.strategy=cot", "grader.timeout_s=1.0"])
    rep = main(cfg, progress=False,
               backend=ScriptedBackend(lambda p, j, s: answers[question_of(p)]))
    s = rep.summary
    assert s["n_unverifiable"] == 1 and s["n_infra_failures"] == 0 and s["n_judged"] == 3
    assert s["accuracy"] == pytest.approx(2 / 3)
    recs = {json.loads(x)["id"]: json.loads(x) for x in
            (rep.out / "records.jsonl").read_text().splitlines()}
    assert recs["a"]["attempts"][0]["verdict"]["status"] == "unverifiable"
    assert recs["a"]["attempts"][0]["correct"] is False

    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp_path / 'pot'}",
                                         "rollout.strategy=pot", "sandbox.timeout_s=1.0"])
    loops = {"What is 3+4?": "```python\nwhile True:\n    pass\n```"}
    rep = main(cfg, progress=False, backend=ScriptedBackend(
        lambda p, j, s: loops.get(question_of(p), "```python\nprint(7)\n```")))
    assert rep.summary["n_infra_failures"] == 0 and rep.summary["n_judged"] == 3
    assert rep.summary["accuracy"] == pytest.approx(2 / 3)
