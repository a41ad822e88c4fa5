"""Config dataclasses of ``verimath sft`` and ``verimath grpo`` (YAML presets in configs/).

Only the choices that matter are first-class fields, with GRPO-paper-relevant defaults spelled
out (TRL's own defaults differ from the paper's: TRL uses ``loss_type="dapo"``, ``beta=0``,
``scale_rewards="group"``); anything else TRL accepts goes in ``trl:`` and is passed through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verimath.rl.arith import ArithmeticConfig
from verimath.rl.rewards import REGISTRY, RewardSpec

_STRATEGIES = ("cot", "pot", "tir", "proof")


@dataclass(frozen=True)
class LoraConfig:
    """Optional LoRA adapters (PEFT).

    Attributes:
        enabled: train adapters instead of all weights.
        r / alpha / dropout: LoRA rank, scaling and dropout.
        target_modules: module names to adapt ("all-linear" for every linear layer).
        merge_on_save: write the merged full model to ``<output_dir>/final`` so
            ``verimath eval --model`` loads it like any checkpoint.
    """

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    merge_on_save: bool = True

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError("lora.r and lora.alpha must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("lora.dropout must be in [0, 1)")

    def to_peft(self) -> Any:
        """A ``peft.LoraConfig`` (None when disabled)."""
        if not self.enabled:
            return None
        import peft

        targets: Any = "all-linear" if self.target_modules == ("all-linear",) else \
            list(self.target_modules)
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                               target_modules=targets, task_type="CAUSAL_LM")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpointing and logging (mapped onto TRL/transformers arguments).

    Attributes:
        max_steps: optimizer steps (-1: use ``num_train_epochs``).
        num_train_epochs: epochs when ``max_steps`` is -1.
        per_device_train_batch_size / gradient_accumulation_steps: batch shape. For GRPO the
            per-step batch counts completions and must be divisible by ``num_generations``.
        learning_rate / lr_scheduler_type / weight_decay / max_grad_norm: AdamW.
        warmup_steps: linear warmup; an int is steps, a float in [0, 1) a share of all steps.
        logging_steps / save_steps / save_total_limit: logging and checkpoints.
        report_to: "none", "tensorboard", "wandb", "trackio", ...
        bf16: bfloat16 mixed precision (GPU); False on CPU.
        gradient_checkpointing: trade compute for memory.
        seed: RNG seed.
        torch_threads: CPU threads for torch (None: torch's default). On a small shared CPU,
            1 can be several times faster than oversubscribed threads.
        resume: True -> resume from the newest ``checkpoint-*`` in output_dir if one exists; a
            path -> resume from it; False -> start fresh.
    """

    max_steps: int = -1
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "constant"
    warmup_steps: float = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int | None = 2
    report_to: str = "none"
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    torch_threads: int | None = None
    resume: bool | str = True

    def __post_init__(self) -> None:
        for name in ("learning_rate", "weight_decay", "max_grad_norm", "warmup_steps"):
            try:  # YAML reads 1e-5 (no dot) as a string
                object.__setattr__(self, name, float(getattr(self, name)))
            except ValueError as e:
                raise ValueError(f"train.{name}: not a number ({getattr(self, name)!r})") from e
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("train.max_steps must be >= 1 (or -1 to train by epochs)")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("train.per_device_train_batch_size and gradient_accumulation_steps "
                             "must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError("train.learning_rate must be > 0")

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by ``SFTConfig`` and ``GRPOConfig``."""
        return {
            "max_steps": self.max_steps, "num_train_epochs": self.num_train_epochs,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "learning_rate": self.learning_rate, "lr_scheduler_type": self.lr_scheduler_type,
            "warmup_steps": self.warmup_steps, "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm, "logging_steps": self.logging_steps,
            "save_steps": self.save_steps, "save_total_limit": self.save_total_limit,
            "report_to": self.report_to, "bf16": self.bf16, "fp16": False,
            "gradient_checkpointing": self.gradient_checkpointing, "seed": self.seed,
            "save_strategy": "steps", "logging_strategy": "steps",
        }


@dataclass(frozen=True)
class SFTDataConfig:
    """Where SFT trajectories come from.

    Attributes:
        path: ``verimath datagen`` output (JSONL, Parquet or a ``save_to_disk`` folder).
        arithmetic: used when ``path`` is None: synthetic teacher trajectories (verimath.rl.arith).
        strategy: output format of the synthetic trajectories (cot | pot | tir).
        only_verified: keep only records whose verdicts are all ``correct``.
        limit: use at most this many records.
    """

    path: str | None = None
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    strategy: str = "tir"
    only_verified: bool = True
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("cot", "pot", "tir"):
            raise ValueError("data.strategy must be cot, pot or tir")


@dataclass(frozen=True)
class SFTJobConfig:
    """``verimath sft``: supervised fine-tuning on verified trajectories.

    Attributes:
        model: "default" (the embedded SmolLM2-135M-Instruct), a local HF folder, or a hub id.
        output_dir: checkpoints, ``final/`` model, ``manifest.json`` and ``metrics.jsonl``.
        max_length: tokens per example (longer ones are truncated, keeping the start).
        data / train / lora: see their classes.
        trl: any other ``trl.SFTConfig`` field, passed through (not those ``train:`` sets:
            :func:`trl_kwargs`).
    """

    model: str = "default"
    output_dir: str = "runs/sft/default"
    max_length: int = 1024
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(learning_rate=2e-5))
    lora: LoraConfig = field(default_factory=LoraConfig)
    trl: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_length < 16:
            raise ValueError("max_length must be >= 16 tokens")


@dataclass(frozen=True)
class GRPODataConfig:
    """Prompts for GRPO.

    Attributes:
        source: "arithmetic" (generated, verimath.rl.arith) or a ``verimath.datasets.load_problems``
            spec (``gsm8k``, ``math500``, ``minif2f``, a JSONL path, a hub id).
        split / limit: passed to the loader.
        arithmetic: the generated task when ``source`` is "arithmetic".
        strategy: prompt template and answer format: cot | pot | tir | proof.
        prompt_file: a YAML prompt template instead of ``reasoning/prompts/<strategy>.yaml``.
        few_shot: keep the template's few-shot turns in the prompt.
        eval_size: problems held out from training (0: none); reported as held-out reward.
    """

    source: str = "arithmetic"
    split: str | None = None
    limit: int | None = None
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    strategy: str = "cot"
    prompt_file: str | None = None
    few_shot: bool = False
    eval_size: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"data.strategy must be one of {_STRATEGIES}")
        if self.eval_size < 0:
            raise ValueError("data.eval_size must be >= 0")


@dataclass(frozen=True)
class GRPOAlgoConfig:
    """The GRPO choices that matter (all logged at start and written to the manifest).

    Attributes:
        loss_type: "grpo" (per-sequence mean, the paper), "dr_grpo" (Liu et al. 2025) or
            "dapo" (token-level, Yu et al. 2025; TRL's default), or any other TRL loss.
        beta: KL coefficient; > 0 loads a frozen reference model (the paper uses 0.04, TRL 0).
        epsilon / epsilon_high: PPO clip range; ``epsilon_high`` > ``epsilon`` is DAPO's
            clip-higher (0.28); None means symmetric.
        scale_rewards: "group" (paper: divide by the group std), "batch" or "none" (Dr. GRPO).
        num_generations: completions per prompt (G).
        max_completion_length: tokens per completion (tool output included for TIR).
        temperature / top_p: sampling.
        num_iterations: optimisation passes per generated batch (mu).
        mask_truncated_completions: leave completions cut by the length limit out of the loss.
        use_vllm / vllm_mode / vllm_server_base_url / vllm_gpu_memory_utilization: generation
            with vLLM ("colocate" in the training process, or "server" for ``trl vllm-serve``).
        max_infra_failure_steps: stop training with a clear error when one reward could judge
            no sample at all (infra-failure rate 100%: dead sandbox / grader / Lean, or a gold
            column that is empty) for this many consecutive reward steps; 0 never stops.
    """

    loss_type: str = "grpo"
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None
    scale_rewards: str = "group"
    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    num_iterations: int = 1
    mask_truncated_completions: bool = False
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3
    max_infra_failure_steps: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.max_infra_failure_steps, int) or self.max_infra_failure_steps < 0:
            raise ValueError("grpo.max_infra_failure_steps must be an int >= 0 (0: never stop)")
        if self.num_generations < 2:
            raise ValueError("grpo.num_generations must be >= 2 (advantages are group-relative)")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError("grpo.scale_rewards must be group, batch or none")
        if self.beta < 0 or self.epsilon <= 0:
            raise ValueError("grpo.beta must be >= 0 and grpo.epsilon > 0")
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError("grpo.epsilon_high must be >= grpo.epsilon (or null)")
        if self.vllm_mode not in ("colocate", "server"):
            raise ValueError("grpo.vllm_mode must be colocate or server")


@dataclass(frozen=True)
class VerifierConfig:
    """Verifier limits for reward computation.

    Attributes:
        workers: concurrent verifier calls per batch (threads over the sandbox/grader pools).
        item_timeout_s: wall-clock seconds one verifier call may take, a safety net (None:
            derived from the verifiers' own limits, ``VerifierPool.item_limit_s``); a call past
            it gets None. There is no per-batch deadline that could decide a sample.
        grader_timeout_s: per-comparison limit inside the grader's worker processes.
        sandbox_timeout_s / sandbox_memory_mb: limits per program run.
        proof_timeout_s: per-proof limit of the Lean checker.
        lean_project: Lean project with Mathlib for the proof reward (None:
            ``$VERIMATH_LEAN_PROJECT``).
        lean_workers: Lean REPL processes (several GB of memory each).
        sandbox_endpoints / grader_endpoints: ``verimath serve`` URLs to run programs / grade
            on instead of locally (token from ``$VERIMATH_API_KEY``); empty: local.
        grader_float_rounding / grader_numeric_precision / grader_strict /
            grader_set_relation: the answer reward's math-verify options
            (``verimath.reasoning.grading.GraderConfig`` ``float_rounding``, ``numeric_precision``,
            ``strict``, ``allow_set_relation_comp``), the same as eval's and datagen's.
    """

    workers: int = 4
    item_timeout_s: float | None = None
    grader_timeout_s: float = 5.0
    sandbox_timeout_s: float = 10.0
    sandbox_memory_mb: int = 1024
    proof_timeout_s: float = 120.0
    lean_project: str | None = None
    lean_workers: int = 1
    sandbox_endpoints: tuple[str, ...] = ()
    grader_endpoints: tuple[str, ...] = ()
    grader_float_rounding: int = 6
    grader_numeric_precision: int = 15
    grader_strict: bool = True
    grader_set_relation: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("verifier.workers must be >= 1")
        if min(self.item_timeout_s or 1.0, self.grader_timeout_s, self.sandbox_timeout_s,
               self.proof_timeout_s) <= 0:
            raise ValueError("verifier timeouts must be > 0 seconds")


@dataclass(frozen=True)
class ToolsConfig:
    """Tool-integrated GRPO.

    Attributes:
        mode: "none"; "tir" (our rollout function, ToRA text format, any chat template); or
            "env" (TRL ``environment_factory`` with a ``python`` tool; needs a chat template
            with tool calling).
        max_tool_calls: python runs per completion.
        max_tool_output_chars: tool output shown to the model is cut to this length.
    """

    mode: str = "none"
    max_tool_calls: int = 4
    max_tool_output_chars: int = 800

    def __post_init__(self) -> None:
        if self.mode not in ("none", "tir", "env"):
            raise ValueError("tools.mode must be none, tir or env")
        if self.max_tool_calls < 1:
            raise ValueError("tools.max_tool_calls must be >= 1")


@dataclass(frozen=True)
class GRPOJobConfig:
    """``verimath grpo``: GRPO with verifier rewards.

    Attributes:
        model: "default" (embedded SmolLM2-135M-Instruct), an SFT ``final/`` folder, or a hub id.
        output_dir: checkpoints, ``final/``, ``manifest.json``, ``metrics.jsonl``.
        rewards: name -> ``{weight, ...options}``; names from :data:`verimath.rl.rewards.REGISTRY`
            (answer, proof, format, tool_use, constant). Only these are built.
        data / grpo / verifier / tools / train / lora: see their classes.
        trl: any other ``trl.GRPOConfig`` field, passed through; one that ``grpo:`` or
            ``train:`` sets (``beta``, ``loss_type``, ...) is refused (:func:`trl_kwargs`).
    """

    model: str = "default"
    output_dir: str = "runs/grpo/default"
    rewards: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"answer": {"weight": 1.0}})
    data: GRPODataConfig = field(default_factory=GRPODataConfig)
    grpo: GRPOAlgoConfig = field(default_factory=GRPOAlgoConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(learning_rate=1e-6))
    lora: LoraConfig = field(default_factory=LoraConfig)
    trl: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.rewards, dict) or not self.rewards:
            raise ValueError("rewards must map names to {weight: ...}, e.g. {answer: {weight: 1}}")
        for name, opts in self.rewards.items():
            if name not in REGISTRY:
                raise ValueError(f"rewards.{name}: unknown; choose from {sorted(REGISTRY)}")
            if not isinstance(opts, dict):
                raise ValueError(f"rewards.{name}: expected a mapping like {{weight: 1.0}}")
        if self.tools.mode == "tir" and self.data.strategy != "tir":
            raise ValueError("tools.mode tir needs data.strategy tir (the prompt that asks for "
                             "python blocks)")
        batch = self.train.per_device_train_batch_size * self.train.gradient_accumulation_steps
        if batch % self.grpo.num_generations:
            raise ValueError(
                f"train batch ({batch} completions = per_device_train_batch_size x "
                f"gradient_accumulation_steps) must be divisible by grpo.num_generations "
                f"({self.grpo.num_generations})")

    def reward_specs(self) -> list[RewardSpec]:
        """The configured reward terms, in config order."""
        out = []
        for name, opts in self.rewards.items():
            rest = {k: v for k, v in opts.items() if k != "weight"}
            out.append(RewardSpec(name, float(opts.get("weight", 1.0)), rest))
        return out


# ---- TRL's own fields: one place each ------------------------------------------------------


def trl_kwargs(config_cls: Any, typed: dict[str, Any], trl: dict[str, Any], *,
               defaults: dict[str, Any] | None = None, typed_from: str = "train") -> dict[str, Any]:
    """Keyword arguments for a TRL config class: typed sections, then defaults, then ``trl:``.

    Every setting has one place. ``trl:`` may name any field of ``config_cls`` (checked here,
    so a typo is an error, not a silently ignored key) except the ones a typed section already
    sets (``typed``: :meth:`TrainConfig.trainer_kwargs`, GRPO's ``grpo:`` section, the output
    folder): those are refused, naming the key to set instead. ``defaults`` are our defaults
    for TRL fields that have no typed section (e.g. DPO's ``beta``); ``trl:`` overrides them.

    Args:
        config_cls: ``trl.SFTConfig`` / ``trl.GRPOConfig`` / ``trl.DPOConfig``.
        typed: what the typed sections set (key -> value).
        trl: the job config's ``trl:`` mapping.
        defaults: our defaults for TRL fields only settable through ``trl:``.
        typed_from: the sections the typed keys come from, named in the error.

    Returns:
        The merged keyword arguments.

    Raises:
        ValueError: ``trl.KEY`` is not a field of ``config_cls`` or duplicates a typed key.
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    for key in trl:
        if key not in names:
            raise ValueError(f"trl.{key}: not a field of trl.{config_cls.__name__}; see TRL's "
                             "documentation of that class for the accepted keys")
        if key in typed:
            raise ValueError(f"trl.{key}: already set by the typed config ({typed_from}.{key} "
                             f"or its equivalent); set it there, once")
    for key in defaults or {}:
        if key not in names:
            raise ValueError(f"default {key!r} is not a field of trl.{config_cls.__name__} "
                             "(TRL version mismatch)")
    return {**(defaults or {}), **typed, **trl}


#: DPO defaults of ``verimath dpo`` for TRL fields (override them in ``trl:``): iterative RPO
#: (Pang et al. 2024): the DPO sigmoid loss (Rafailov et al. 2023) plus the NLL of the chosen
#: answer with weight 1 (TRL's ``sft`` loss: mean token NLL of chosen), beta 0.1.
DPO_DEFAULTS: dict[str, Any] = {
    "beta": 0.1, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0],
}


@dataclass(frozen=True)
class DPODataConfig:
    """Preference pairs for DPO.

    Attributes:
        path: a ``preference.jsonl`` of ``verimath datagen`` (``export.formats: [..,
            preference]``), or any JSONL with TRL's conversational preference columns
            ``prompt`` / ``chosen`` / ``rejected``.
        limit: use at most this many pairs (file order).
        eval_size: problems (``problem_id``; a pair without one is its own problem) whose
            pairs are held out and evaluated (reward margin / accuracy) before and after.
    """

    path: str | None = None
    limit: int | None = None
    eval_size: int = 0

    def __post_init__(self) -> None:
        if self.eval_size < 0:
            raise ValueError("data.eval_size must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise ValueError("data.limit must be >= 1 (or null)")


@dataclass(frozen=True)
class DPOJobConfig:
    """``verimath dpo``: DPO / RPO on verified-vs-wrong pairs (TRL ``DPOTrainer``).

    Attributes:
        model: "default" (embedded SmolLM2-135M-Instruct), an SFT ``final/`` folder, a hub id.
        output_dir: checkpoints, ``final/``, ``manifest.json``.
        data / train / lora: see their classes; LoRA is on by default (the reference model is
            then the base with adapters disabled, TRL's rule); without LoRA the reference is a
            frozen copy of the initial weights.
        trl: any ``trl.DPOConfig`` field (``beta``, ``loss_type``, ``loss_weights``,
            ``max_length``, ``precompute_ref_log_probs``, ...) over :data:`DPO_DEFAULTS`; the
            fields the ``train:`` section sets are refused here (one place each).
    """

    model: str = "default"
    output_dir: str = "runs/dpo/default"
    data: DPODataConfig = field(default_factory=DPODataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(learning_rate=5e-6))
    lora: LoraConfig = field(default_factory=lambda: LoraConfig(enabled=True))
    trl: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.trl, dict):
            raise ValueError("trl: expected a mapping of trl.DPOConfig fields")
