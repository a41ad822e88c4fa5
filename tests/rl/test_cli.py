"""`verimath sft` / `verimath grpo`: errors are one clear line and exit code 2, nothing trained."""

from __future__ import annotations

import json

from tests.verimath.tiny_model import tiny_model_dir
from verimath.cli import main


def test_grpo_bad_override_exits_2_naming_the_key(capsys, tmp_path):
    rc = main(["grpo", "--config", "configs/grpo/arith_cot.yaml", "--out", str(tmp_path / "g"),
               "grpo.loss_typo=dapo"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "verimath grpo:" in err and "loss_typo" in err
    assert not (tmp_path / "g").exists()


def test_sft_missing_data_exits_2(capsys, tmp_path):
    rc = main(["sft", "--config", "configs/sft/arith_tir.yaml", "--data",
               str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "s")])
    assert rc == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_sft_bad_record_exits_2_naming_the_record(capsys, tmp_path):
    bad = {"problem": {"id": "gsm8k-17"}, "messages": [{"role": "user", "content": "q"},
                                                        {"role": "assistant", "content": "a"}],
           "spans": [{"kind": "model", "text": "b"}], "verdicts": {"a": {"status": "correct"}}}
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(bad) + "\n")
    rc = main(["sft", "--model", str(tiny_model_dir()), "--data", str(data),
               "--out", str(tmp_path / "s")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "gsm8k-17" in err and "spans" in err


def test_sft_cli_trains_tiny_model_from_datagen_file(capsys, tmp_path):
    from verimath.rl.arith import ArithmeticConfig, arithmetic_problems, arithmetic_trajectories

    recs = arithmetic_trajectories(arithmetic_problems(ArithmeticConfig(n=4)), "pot")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rc = main(["sft", "--model", str(tiny_model_dir()), "--data", str(data),
               "--out", str(tmp_path / "s"), "train.max_steps=1", "max_length=512",
               "train.per_device_train_batch_size=2"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["global_step"] == 1 and len(out["loss_per_step"]) == 1
    assert (tmp_path / "s" / "final" / "config.json").is_file()
