"""``verimath datagen`` command line: presets, config errors, and (slow) real-model runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verimath.cli import main as cli
from verimath.config import load_config
from verimath.datagen.config import DatagenConfig

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "configs" / "datagen").glob("*.yaml"))


def test_presets_exist_and_load() -> None:
    names = {p.stem for p in PRESETS}
    assert {"gsm8k_pot", "gsm8k_tir", "minif2f_formal"} <= names
    for p in PRESETS:
        cfg = load_config(DatagenConfig, p)
        assert cfg.inputs and cfg.out.startswith("runs/")
    pot = load_config(DatagenConfig, str(REPO / "configs/datagen/gsm8k_pot.yaml"), ["solve.n=8"])
    assert pot.solve.n == 8 and str(pot.rollout.strategy) == "pot"
    assert pot.decontam.benchmarks == ("gsm8k", "math500") and pot.decontam.ngram == 13


def test_bad_config_is_exit_code_2(capsys, tmp_path) -> None:
    rc = cli(["datagen", "--config", str(REPO / "configs/datagen/gsm8k_pot.yaml"),
              "solve.majority=2", "--out", str(tmp_path)])
    assert rc == 2
    assert "majority" in capsys.readouterr().err
    assert cli(["datagen", "--mode", "informal", "nonsense_key=1"]) == 2


def test_formal_preset_without_lean_stops_naming_doctor(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `lake` on PATH
    rc = cli(["datagen", "--config", str(REPO / "configs/datagen/minif2f_formal.yaml"),
              "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    assert "verimath doctor" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_help_lists_datagen(capsys) -> None:
    with pytest.raises(SystemExit):
        cli(["datagen", "--help"])
    assert "--config" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_gsm8k_preset_with_the_embedded_model(tmp_path, shared_data) -> None:
    out = tmp_path / "gsm8k"
    rc = cli(["datagen", "--config", str(REPO / "configs/datagen/gsm8k_pot.yaml"), "--limit", "4",
              "--out", str(out), "--no-progress", "--torch-threads", "1", "solve.n=2",
              "solve.max_tokens=160"])
    assert rc == 0
    funnel = json.loads((out / "funnel.json").read_text())
    solve = next(s for s in funnel["stages"] if s["stage"] == "solve")
    assert solve["entered"] == 4
    assert (out / "data.jsonl").exists() and (out / "funnel.png").exists()
    rows = [json.loads(x) for x in (out / "data.jsonl").read_text().splitlines()]
    assert all(r["verdicts"]["grader"]["status"] == "correct" for r in rows)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_formal_preset_with_the_embedded_model_and_the_prover_double(tmp_path,
                                                                       shared_data) -> None:
    out = tmp_path / "formal"
    rc = cli(["datagen", "--config", str(REPO / "configs/datagen/minif2f_formal.yaml"),
              "--limit", "2", "--out", str(out), "--no-progress", "--torch-threads", "1",
              "formal.max_tokens=96", "formal.prover.backend=scripted"])
    assert rc == 0
    funnel = json.loads((out / "funnel.json").read_text())
    assert [s["stage"] for s in funnel["stages"]][:4] == ["load", "dedup", "decontaminate",
                                                          "autoformalize"]
