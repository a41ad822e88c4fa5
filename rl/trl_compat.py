"""The TRL versions verimath is tested with, and a start-up check of the TRL internals it uses.

verimath reaches TRL's ``GRPOTrainer`` through public hooks wherever the tested TRL has one:

* reward functions that return None (TRL leaves a sample none of its rewards judged out of the
  group baseline, advantage 0) and the ``log_metric`` reward keyword (logged scalars);
* ``rollout_func`` returning ``env_mask`` (tool tokens out of the loss) and
  ``environment_factory`` (tool-calling chat templates).

One piece has no public counterpart in the tested range: a ``rollout_func`` that wants the
trainer's own generator (vLLM server/colocate or transformers, with its weight sync and
model unwrapping) must call ``GRPOTrainer._generate_single_turn``, and its stop strings reach
that generator through trainer attributes (:func:`verimath.rl.tools.generation_stops`).
:func:`check_trl` verifies those when a trainer is built, so a TRL release that renames or
reshapes them fails at start-up with the installed and tested versions in the message,
not inside a training step.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: The TRL versions the test suite runs against (pyproject.toml pins the same range).
TESTED_TRL = ">=1.16,<1.17"

#: ``GRPOTrainer`` keyword arguments verimath passes (public API).
PUBLIC_INIT_PARAMS: tuple[str, ...] = ("model", "reward_funcs", "args", "train_dataset",
                                       "processing_class", "peft_config", "rollout_func",
                                       "environment_factory")

#: Private ``GRPOTrainer`` methods the TIR rollout calls -> the leading parameters it passes.
ROLLOUT_HOOKS: Mapping[str, tuple[str, ...]] = {
    "_generate_single_turn": ("prompt_ids", "images", "multimodal_fields", "num_generations"),
}

#: Trainer attributes :func:`verimath.rl.tools.generation_stops` and the rollout read, per
#: generation backend (checked on the built trainer by :func:`check_rollout_trainer`).
ROLLOUT_ATTRS: tuple[str, ...] = ("processing_class", "max_completion_length", "eos_token_ids",
                                  "args", "model", "use_vllm")
VLLM_ATTRS: tuple[str, ...] = ("vllm_generation",)
TRANSFORMERS_ATTRS: tuple[str, ...] = ("generation_config",)


class TrlCompatError(RuntimeError):
    """The installed TRL lacks (or reshaped) an internal verimath relies on."""


def trl_version() -> str:
    """The installed TRL version string (``"1.16.0"``), or ``"not installed"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trl")
    except PackageNotFoundError:
        return "not installed"


def in_tested_range(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed one) lies in :data:`TESTED_TRL`."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version or trl_version()) in SpecifierSet(TESTED_TRL)
    except InvalidVersion:
        return False


def _fail(problems: Sequence[str]) -> TrlCompatError:
    return TrlCompatError(
        f"trl {trl_version()} is not compatible with this verimath (tested with trl"
        f"{TESTED_TRL}): " + "; ".join(problems) + ". Install a tested version, e.g. "
        f"`pip install 'trl{TESTED_TRL}'`.")


def _hook_problems(cls: type, hooks: Mapping[str, tuple[str, ...]]) -> list[str]:
    problems = []
    for name, params in hooks.items():
        fn = getattr(cls, name, None)
        if not callable(fn):
            problems.append(f"{cls.__name__}.{name} is gone")
            continue
        try:
            have = [p for p in inspect.signature(fn).parameters if p != "self"]
        except (TypeError, ValueError):
            problems.append(f"{cls.__name__}.{name} has no inspectable signature")
            continue
        if tuple(have[:len(params)]) != params:
            problems.append(f"{cls.__name__}.{name} takes ({', '.join(have)}), expected it to "
                            f"start with ({', '.join(params)})")
    return problems


def check_trl(*, rollout: bool = False, trainer_cls: type | None = None) -> None:
    """Verify the installed TRL offers what verimath calls; cheap, call it at start-up.

    Args:
        rollout: also check the private hooks of the TIR ``rollout_func``
            (:data:`ROLLOUT_HOOKS`).
        trainer_cls: the class to inspect; default ``trl.GRPOTrainer``.

    Raises:
        TrlCompatError: a hook is missing or its parameters changed; the message names the
            installed TRL version and :data:`TESTED_TRL`.
    """
    if trainer_cls is None:
        try:
            from trl import GRPOTrainer
        except ImportError as e:
            raise _fail([f"trl.GRPOTrainer cannot be imported ({e})"]) from e
        trainer_cls = GRPOTrainer
    init = set(inspect.signature(trainer_cls).parameters)
    problems = [f"{trainer_cls.__name__}() takes no {p!r} argument"
                for p in PUBLIC_INIT_PARAMS if p not in init]
    if rollout:
        problems += _hook_problems(trainer_cls, ROLLOUT_HOOKS)
    if problems:
        raise _fail(problems)
    if not in_tested_range():
        log.warning("trl %s is outside the tested range trl%s; the hooks verimath uses are "
                    "present, but results are not covered by its tests", trl_version(),
                    TESTED_TRL)


def check_rollout_trainer(trainer: Any) -> None:
    """Verify a built trainer has the attributes the TIR rollout reads (see :data:`ROLLOUT_ATTRS`).

    Raises:
        TrlCompatError: an attribute is missing (message names the TRL version and range).
    """
    names = list(ROLLOUT_ATTRS)
    if getattr(trainer, "use_vllm", False):
        names += VLLM_ATTRS
    else:
        names += TRANSFORMERS_ATTRS
    problems = [f"the trainer has no attribute {n!r}" for n in names if not hasattr(trainer, n)]
    if getattr(trainer, "use_vllm", False) and hasattr(trainer, "vllm_generation") and \
            not hasattr(trainer.vllm_generation, "generation_kwargs"):
        problems.append("trainer.vllm_generation has no 'generation_kwargs'")
    if not getattr(trainer, "use_vllm", False) and hasattr(trainer, "generation_config") and \
            not hasattr(trainer.generation_config, "stop_strings"):
        problems.append("trainer.generation_config has no 'stop_strings'")
    if hasattr(trainer, "args") and not hasattr(trainer.args, "chat_template_kwargs"):
        problems.append("trainer.args has no 'chat_template_kwargs'")
    if problems:
        raise _fail(problems)
