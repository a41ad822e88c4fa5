"""datagen resume rules: retry what could not be judged, stage files named by stage, settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.datagen.helpers import informal_config, pot_policy, write_problems
from verimath.datagen.pipeline import Components, main
from verimath.jobs import SettingsMismatch
from verimath.testing import ScriptedBackend


def _asked(backend: ScriptedBackend) -> int:
    return sum(len(prompts) for prompts, _ in backend.calls)


def test_a_resumed_run_retries_an_injected_sandbox_error(tmp_path, monkeypatch) -> None:
    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    inp = write_problems(tmp_path / "in.jsonl")
    real_run = sbmod.Sandbox.run

    def broken_for_q2(self, code, **kw):  # the 3-cats problem's programs all hit a dead worker
        if "print(12" in code or "print(4 * 3)" in code or "print(16)" in code:
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "t")
        return real_run(self, code, **kw)

    monkeypatch.setattr(sbmod.Sandbox, "run", broken_for_q2)
    first = main(informal_config(tmp_path / "out", inp),
                 components=Components(backend=ScriptedBackend(pot_policy)))
    solve = first.funnel.get("solve")
    assert solve is not None and solve.unjudged == 1
    rows = [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert "q2" not in {r["problem_id"] for r in rows}

    monkeypatch.setattr(sbmod.Sandbox, "run", real_run)  # the infrastructure is back
    backend = ScriptedBackend(pot_policy)
    again = main(informal_config(tmp_path / "out", inp), components=Components(backend=backend))
    assert _asked(backend) == 1  # only the unjudged problem was solved again
    assert again.funnel.get("solve").unjudged == 0
    fresh = main(informal_config(tmp_path / "fresh", inp),
                 components=Components(backend=ScriptedBackend(pot_policy)))
    assert (tmp_path / "out" / "data.jsonl").read_bytes() == \
        (tmp_path / "fresh" / "data.jsonl").read_bytes()
    assert again.counts == fresh.counts


def test_retries_are_bounded_and_what_stays_unjudged_is_reported(tmp_path, monkeypatch) -> None:
    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    def always_broken(self, code, **kw):
        return ExecResult(ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "t")

    monkeypatch.setattr(sbmod.Sandbox, "run", always_broken)
    inp = write_problems(tmp_path / "in.jsonl")
    cfg = dataclasses.replace(informal_config(tmp_path / "out", inp), infra_retries=1)
    asked = []
    for _ in range(3):
        backend = ScriptedBackend(pot_policy)
        rep = main(cfg, components=Components(backend=backend))
        asked.append(_asked(backend))
        assert rep.funnel.get("solve").unjudged == 5
    assert asked == [5, 5, 0]  # first try, one retry, then reported, not retried


def test_toggling_dedup_does_not_recompute_solve(tmp_path) -> None:
    inp = write_problems(tmp_path / "in.jsonl")
    cfg = informal_config(tmp_path / "out", inp)
    main(cfg, components=Components(backend=ScriptedBackend(pot_policy)))
    assert sorted(p.name for p in (tmp_path / "out" / "stages").glob("*.jsonl")) == \
        ["dedup.jsonl", "solve.jsonl"]
    for dedup in (False, True):
        backend = ScriptedBackend(pot_policy)
        main(dataclasses.replace(cfg, dedup=dedup), components=Components(backend=backend))
        assert _asked(backend) == 0, f"dedup={dedup} recomputed solve"


def test_changed_solve_settings_are_refused_naming_the_key(tmp_path) -> None:
    inp = write_problems(tmp_path / "in.jsonl")
    main(informal_config(tmp_path / "out", inp),
         components=Components(backend=ScriptedBackend(pot_policy)))
    before = (tmp_path / "out" / "stages" / "solve.jsonl").read_bytes()
    with pytest.raises(SettingsMismatch, match="solve.max_per_problem") as e:
        main(informal_config(tmp_path / "out", inp, max_per_problem=1),
             components=Components(backend=ScriptedBackend(pot_policy)))
    assert e.value.keys == ["solve.max_per_problem"]
    assert (tmp_path / "out" / "stages" / "solve.jsonl").read_bytes() == before
    # worker counts cannot change results: a resume with other ones is accepted
    cfg = informal_config(tmp_path / "out", inp)
    cfg = dataclasses.replace(cfg, grader=dataclasses.replace(cfg.grader, workers=2))
    backend = ScriptedBackend(pot_policy)
    main(cfg, components=Components(backend=backend))
    assert _asked(backend) == 0
    assert Path(tmp_path / "out" / "stages" / "solve.settings.json").exists()


def test_three_datagen_shards_merged_equal_one_run(tmp_path) -> None:
    from tests.datagen.helpers import many_problems
    from verimath.cli import main as cli

    inp = many_problems(tmp_path / "in.jsonl", 6)
    with open(inp, "a") as f:  # a repeat: dedup must see every input, not one shard's share
        f.write(open(inp).readline())
    base = dataclasses.replace(informal_config(tmp_path / "whole", inp, n=2),
                               export=dataclasses.replace(informal_config(
                                   tmp_path, inp).export, formats=("jsonl",)))
    main(base, components=Components(backend=ScriptedBackend(pot_policy)))
    outs = []
    for i in range(3):
        cfg = dataclasses.replace(base, out=str(tmp_path / f"s{i}"), shard=f"{i}/3")
        main(cfg, components=Components(backend=ScriptedBackend(pot_policy)))
        outs.append(cfg.out)
    assert cli(["merge", *outs, "--out", str(tmp_path / "m")]) == 0
    for name in ("data.jsonl", "rejected.jsonl"):
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    fm, fw = (json.loads((tmp_path / d / "funnel.json").read_text()) for d in ("m", "whole"))
    assert fm["stages"] == fw["stages"] and fm["counts"] == fw["counts"]
    # an unfinished set of shards is refused
    assert cli(["merge", outs[0], outs[1], "--out", str(tmp_path / "m2")]) == 2
