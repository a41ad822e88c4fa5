"""``verimath sft``: TRL's SFTTrainer on verified trajectories, tool output masked."""

from __future__ import annotations

import logging
import time
from typing import Any

from verimath.rl.common import (
    TrainReport,
    check_resume_settings,
    load_causal_lm,
    load_tokenizer,
    resolve_model_path,
    run_trainer,
    write_manifest,
)
from verimath.rl.config import SFTJobConfig

log = logging.getLogger(__name__)


def sft_records(cfg: SFTJobConfig) -> list[dict[str, Any]]:
    """The configured trajectories: ``data.path`` or synthetic arithmetic teacher data."""
    from verimath.rl.arith import arithmetic_problems, arithmetic_trajectories
    from verimath.rl.sft_data import load_records

    if cfg.data.path:
        return load_records(cfg.data.path, cfg.data.limit)
    recs = arithmetic_trajectories(arithmetic_problems(cfg.data.arithmetic), cfg.data.strategy)
    return recs[: cfg.data.limit] if cfg.data.limit is not None else recs


def build_sft_trainer(cfg: SFTJobConfig, model: Any = None, tokenizer: Any = None) -> Any:
    """An ``SFTTrainer`` for ``cfg`` (model and tokenizer loaded unless given)."""
    from trl import SFTConfig, SFTTrainer

    from verimath.rl.sft_data import build_sft_dataset

    path = resolve_model_path(cfg.model) if model is None or tokenizer is None else ""
    tokenizer = tokenizer or load_tokenizer(path)
    model = model if model is not None else load_causal_lm(path)
    dataset = build_sft_dataset(sft_records(cfg), tokenizer,
                                only_verified=cfg.data.only_verified,
                                source=cfg.data.path or "arithmetic")
    from verimath.rl.config import trl_kwargs

    typed = {**cfg.train.trainer_kwargs(), "output_dir": cfg.output_dir,
             "max_length": cfg.max_length}
    args = SFTConfig(**trl_kwargs(SFTConfig, typed, cfg.trl))
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=cfg.lora.to_peft())
    if len(trainer.train_dataset) == 0:
        raise ValueError(f"no SFT example keeps a trained token within max_length="
                         f"{cfg.max_length} (prompts are longer); raise max_length")
    return trainer


def run_sft(cfg: SFTJobConfig) -> TrainReport:
    """Train, checkpoint (resuming when a checkpoint exists), save ``final/``; see TrainReport."""
    started = time.monotonic()
    settings = check_resume_settings(cfg)
    trainer = build_sft_trainer(cfg)
    write_manifest("sft", cfg, cfg.output_dir, model=cfg.model, settings=settings,
                   examples=len(trainer.train_dataset))
    return run_trainer(trainer, cfg, trainer.processing_class, started)
