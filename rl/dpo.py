"""``verimath dpo``: TRL's DPOTrainer on verified-vs-judged-wrong pairs (DPO / iterative RPO).

Pairs come from ``verimath datagen`` with ``export.formats: [.., preference]``
(:mod:`verimath.datagen.preference`): chosen = a verified trajectory, rejected = the model's own
judged-wrong sample for the same prompt. The default loss is iterative RPO's (Pang et al. 2024,
"Iterative Reasoning Preference Optimization"): DPO's sigmoid loss (Rafailov et al. 2023) plus
the NLL of the chosen answer (TRL ``loss_type: [sigmoid, sft]``, ``loss_weights: [1, 1]``,
:data:`verimath.rl.config.DPO_DEFAULTS`); every TRL field is set in ``trl:``.

Reference model (TRL's rule): with LoRA (the default) the base with adapters disabled; without
LoRA a frozen copy of the initial weights, loaded here (``trl.precompute_ref_log_probs: true``
computes its log-probs once instead).

Known limit: the tool-output spans of TIR trajectories are scored like model text (TRL's
collator masks only the prompt); PoT pairs have no tool spans in the assistant turn.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

from verimath.records import RecordError
from verimath.rl.common import (
    TrainReport,
    check_resume_settings,
    load_causal_lm,
    load_tokenizer,
    resolve_model_path,
    run_trainer,
    write_manifest,
)
from verimath.rl.config import DPO_DEFAULTS, DPOJobConfig, trl_kwargs

log = logging.getLogger(__name__)

_COLUMNS = ("prompt", "chosen", "rejected")


def _messages(v: Any, where: str, name: str) -> list[dict[str, str]]:
    if not isinstance(v, list) or not v or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in v):
        raise RecordError(where, name, "expected a non-empty list of {role, content} messages")
    return [{"role": m["role"], "content": m["content"]} for m in v]


def load_pairs(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Preference rows ``{prompt, chosen, rejected, problem_id}`` of a JSONL file.

    Args:
        path: ``preference.jsonl`` (datagen) or any JSONL with conversational ``prompt`` /
            ``chosen`` / ``rejected`` message lists.
        limit: read at most this many pairs.

    Returns:
        Rows in file order; ``problem_id`` is None where the file has none.

    Raises:
        FileNotFoundError: no such file.
        RecordError: a line that is not JSON or lacks a column (names file, line and field).
        ValueError: the file holds no pair.
    """
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(where, "(line)", f"not JSON: {e}") from e
            if not isinstance(rec, dict):
                raise RecordError(where, "(line)", "expected a JSON object")
            row = {c: _messages(rec.get(c), where, c) for c in _COLUMNS}
            row["problem_id"] = rec.get("problem_id")
            out.append(row)
    if not out:
        raise ValueError(f"{path}: no preference pairs (run datagen with "
                         "export.formats: [jsonl, preference])")
    return out


def split_heldout(rows: list[dict[str, Any]], eval_size: int,
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)``: the pairs of the last ``eval_size`` problems are held out.

    Raises:
        ValueError: ``eval_size`` leaves no training pair.
    """
    if not eval_size:
        return rows, []
    keys = list(dict.fromkeys(r["problem_id"] if r["problem_id"] is not None else f"#{i}"
                              for i, r in enumerate(rows)))
    if eval_size >= len(keys):
        raise ValueError(f"data.eval_size={eval_size} holds out every one of the {len(keys)} "
                         "problems; lower it")
    held = set(keys[-eval_size:])
    train, test = [], []
    for i, r in enumerate(rows):
        k = r["problem_id"] if r["problem_id"] is not None else f"#{i}"
        (test if k in held else train).append(r)
    return train, test


def dpo_args(cfg: DPOJobConfig) -> Any:
    """``trl.DPOConfig``: ``train:`` keys, :data:`DPO_DEFAULTS`, then ``trl:``."""
    from trl import DPOConfig

    typed = {**cfg.train.trainer_kwargs(), "output_dir": cfg.output_dir,
             "remove_unused_columns": True}
    return DPOConfig(**trl_kwargs(DPOConfig, typed, cfg.trl, defaults=DPO_DEFAULTS))


def dpo_choices(args: Any, lora: bool) -> dict[str, Any]:
    """The settings that decide what "DPO" means here (logged and written to the manifest)."""
    keys = ("loss_type", "loss_weights", "beta", "label_smoothing", "max_length",
            "precompute_ref_log_probs", "learning_rate", "per_device_train_batch_size",
            "gradient_accumulation_steps", "max_steps", "num_train_epochs")
    out = {k: getattr(args, k, None) for k in keys}
    out["reference_model"] = "the base with LoRA adapters disabled" if lora else \
        "a frozen copy of the initial weights"
    return out


def build_dpo_trainer(cfg: DPOJobConfig, *, model: Any = None, tokenizer: Any = None,
                      pairs: list[dict[str, Any]] | None = None) -> Any:
    """A ``trl.DPOTrainer`` for ``cfg`` (model, tokenizer and pairs loaded unless given).

    Raises:
        ValueError: no ``data.path`` and no ``pairs``; see also :func:`load_pairs`.
    """
    from datasets import Dataset
    from trl import DPOTrainer

    if pairs is None:
        if not cfg.data.path:
            raise ValueError("data.path: a preference.jsonl is needed (datagen "
                             "export.formats: [jsonl, preference])")
        pairs = load_pairs(cfg.data.path, cfg.data.limit)
    train, held = split_heldout(pairs, cfg.data.eval_size)
    path = resolve_model_path(cfg.model) if model is None or tokenizer is None else ""
    tokenizer = tokenizer or load_tokenizer(path)
    ref = None
    if not cfg.lora.enabled:  # TRL would reload the reference from the hub id in config
        ref = copy.deepcopy(model) if model is not None else load_causal_lm(path)
        ref.eval()
    model = model if model is not None else load_causal_lm(path)
    args = dpo_args(cfg)

    def ds(rows: list[dict[str, Any]]) -> Any:
        return Dataset.from_list([{c: r[c] for c in _COLUMNS} for r in rows])

    log.info("DPO choices: %s", dpo_choices(args, cfg.lora.enabled))
    return DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=ds(train),
                      eval_dataset=ds(held) if held else None, processing_class=tokenizer,
                      peft_config=cfg.lora.to_peft())


def heldout_metrics(trainer: Any) -> dict[str, float] | None:
    """TRL's evaluation on the held-out pairs, or None without held-out pairs.

    Keys as TRL logs them: ``eval_loss``, ``eval_rewards/margins``, ``eval_rewards/accuracies``,
    ``eval_logps/chosen``, ... (rewards are beta-scaled log-ratios to the reference model).
    """
    if trainer.eval_dataset is None:
        return None
    return {k: float(v) for k, v in trainer.evaluate().items()
            if isinstance(v, int | float)}


def run_dpo(cfg: DPOJobConfig) -> TrainReport:
    """Train (resuming when a checkpoint exists), save ``final/``; held-out metrics in ``extra``.

    ``extra``: ``pairs`` / ``heldout_pairs`` (counts), ``heldout_before`` / ``heldout_after``
    (:func:`heldout_metrics` of the initial and the trained policy; None without held-out
    pairs) and ``dpo`` (:func:`dpo_choices`).
    """
    started = time.monotonic()
    settings = check_resume_settings(cfg)
    trainer = build_dpo_trainer(cfg)
    choices = dpo_choices(trainer.args, cfg.lora.enabled)
    n_eval = len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0
    write_manifest("dpo", cfg, cfg.output_dir, model=cfg.model, settings=settings,
                   pairs=len(trainer.train_dataset), heldout_pairs=n_eval, dpo=choices)
    before = heldout_metrics(trainer)
    report = run_trainer(trainer, cfg, trainer.processing_class, started,
                         after_train=lambda t: {"heldout_after": heldout_metrics(t)})
    report.extra.update(pairs=len(trainer.train_dataset), heldout_pairs=n_eval, dpo=choices,
                        heldout_before=before)
    return report
