"""Pieces shared by the SFT and GRPO jobs: model resolution, resume, final save, report."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    """What a training job did.

    Attributes:
        output_dir: the run folder (checkpoints, manifest, metrics).
        final_dir: the saved model (merged when LoRA was used): ``verimath eval --model`` input.
        global_step: optimizer steps done in total (resumed steps included).
        resumed_from: the checkpoint the run resumed from, or None.
        seconds: wall-clock seconds of this invocation.
        log_history: TRL's per-step logs (loss, reward, reward_std, rewards/<name>/mean, ...).
        extra: job-specific numbers (e.g. held-out reward before/after).
    """

    output_dir: str
    final_dir: str
    global_step: int
    resumed_from: str | None
    seconds: float
    log_history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def resolve_model_path(spec: str) -> str:
    """A local folder (or hub id) for ``from_pretrained``; "default" is the embedded SmolLM2.

    Raises:
        ValueError: a bare GGUF file (convert it, or use "default").
    """
    from verimath.backends import resolve_model

    path, gguf = resolve_model(spec)
    if gguf is not None:
        raise ValueError(f"model {spec!r}: training needs a safetensors folder, not a GGUF file; "
                         "use 'default' for the embedded SmolLM2 (converted automatically)")
    return path


def load_tokenizer(path: str, padding_side: str = "right") -> Any:
    """The model's tokenizer with a pad token (EOS when it has none).

    Raises:
        ValueError: the tokenizer has no chat template (the jobs train chat models).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise ValueError(f"tokenizer of {path} has no chat template")
    tok.padding_side = padding_side
    return tok


def load_causal_lm(path: str, dtype: str = "float32") -> Any:
    """``AutoModelForCausalLM.from_pretrained(path)`` in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))


def find_resume(output_dir: str, resume: bool | str) -> str | None:
    """The checkpoint to resume from: ``resume`` if a path, else the newest in ``output_dir``.

    Raises:
        FileNotFoundError: ``resume`` names a checkpoint folder that does not exist.
    """
    if isinstance(resume, str):
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"train.resume: checkpoint {resume} not found")
        return resume
    if not resume or not Path(output_dir).is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir)


def training_settings(cfg: Any) -> dict[str, Any]:
    """The settings an SFT / GRPO run's weights depend on (flat ``{dotted_key: value}``).

    The whole resolved config (:func:`verimath.jobs.settings_of`) minus
    ``verimath.jobs.non_result_keys("train")``.
    """
    from verimath.jobs import non_result_keys, settings_of

    return settings_of(dataclasses.asdict(cfg), ignore=non_result_keys("train"))


def check_resume_settings(cfg: Any) -> dict[str, Any]:
    """Refuse to resume a checkpoint in ``cfg.output_dir`` trained with other settings.

    Runs before anything is loaded or written. Resuming from the folder's own newest
    checkpoint (``train.resume: true``) requires the settings stored in its ``manifest.json``
    to equal this run's (keys in ``verimath.jobs.TRAIN_NON_RESULT_KEYS`` may differ, e.g. a larger
    ``train.max_steps`` continues the run); an explicit ``train.resume: PATH`` is the user's
    choice and is not checked.

    Returns:
        This run's :func:`training_settings` (to store in the manifest).

    Raises:
        verimath.jobs.SettingsMismatch: names every differing key (or says the folder's
            manifest records no settings).
    """
    from verimath.jobs import check_settings

    settings = training_settings(cfg)
    own = cfg.train.resume is True and find_resume(cfg.output_dir, True) is not None
    check_settings(Path(cfg.output_dir) / "manifest.json", settings, has_work=own)
    return settings


def save_final(trainer: Any, tokenizer: Any, output_dir: str, merge_lora: bool) -> str:
    """Save the trained model to ``<output_dir>/final`` (LoRA merged when asked); return it."""
    final = os.path.join(output_dir, "final")
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload") and merge_lora:
        model = model.merge_and_unload()
        model.save_pretrained(final)
    else:
        trainer.save_model(final)
    tokenizer.save_pretrained(final)
    return final


def write_manifest(job: str, cfg: Any, output_dir: str, **extra: Any) -> None:
    """``<output_dir>/manifest.json``: config, versions, git revision and ``extra``."""
    from verimath.manifest import build_manifest
    from verimath.store import atomic_write_json

    atomic_write_json(os.path.join(output_dir, "manifest.json"),
                      build_manifest(job, dataclasses.asdict(cfg), **extra))


def run_trainer(trainer: Any, cfg: Any, tokenizer: Any, started: float,
                after_train: Any = None) -> TrainReport:
    """Train (resuming if a checkpoint exists), save ``final/``, and report.

    ``after_train``: called with the trainer after training and before ``final/`` is saved
    (LoRA adapters are still in place then); its dict goes into ``TrainReport.extra``.
    """
    if cfg.train.torch_threads:
        import torch

        torch.set_num_threads(cfg.train.torch_threads)
    resume = find_resume(cfg.output_dir, cfg.train.resume)
    if resume:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    extra = dict(after_train(trainer) or {}) if after_train is not None else {}
    final = save_final(trainer, tokenizer, cfg.output_dir, cfg.lora.merge_on_save)
    return TrainReport(
        output_dir=cfg.output_dir, final_dir=final, global_step=int(trainer.state.global_step),
        resumed_from=resume, seconds=time.monotonic() - started,
        log_history=list(trainer.state.log_history), extra=extra,
    )
