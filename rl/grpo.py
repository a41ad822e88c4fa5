"""``verimath grpo``: TRL's GRPOTrainer with our verifiers as reward functions."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verimath.records import Problem
from verimath.rl.common import (
    TrainReport,
    check_resume_settings,
    load_causal_lm,
    load_tokenizer,
    resolve_model_path,
    run_trainer,
    write_manifest,
)
from verimath.rl.config import GRPOJobConfig
from verimath.rl.rewards import RewardFn, VerifierPool, build_rewards, needed_verifiers

log = logging.getLogger(__name__)

PROOF_PROMPT = Path(__file__).with_name("prompts") / "proof.yaml"


def grpo_problems(cfg: GRPOJobConfig) -> tuple[list[Problem], list[Problem]]:
    """``(train, held_out)`` problems; the last ``data.eval_size`` are held out.

    Raises:
        ValueError: no usable problem (bad records are logged with their line and field).
    """
    d = cfg.data
    if d.source == "arithmetic":
        from dataclasses import replace

        from verimath.rl.arith import arithmetic_problems

        train = arithmetic_problems(d.arithmetic)
        held = arithmetic_problems(replace(d.arithmetic, n=max(d.eval_size, 1),
                                           seed=d.arithmetic.seed + 10_007)) if d.eval_size else []
        return train, held
    from verimath.datasets import load_problems

    res = load_problems(d.source, split=d.split, limit=d.limit)
    for err in res.errors[:5]:
        log.warning("skipping bad record: %s", err)
    probs = res.problems
    if d.strategy == "proof":
        probs = [p for p in probs if p.formal_statement]
    else:
        probs = [p for p in probs if p.answer is not None]
    if len(probs) <= d.eval_size:
        raise ValueError(f"data.source {d.source}: {len(probs)} usable problems, need more than "
                         f"data.eval_size={d.eval_size}")
    cut = len(probs) - d.eval_size
    return probs[:cut], probs[cut:]


def prompt_rows(problems: Sequence[Problem], cfg: GRPOJobConfig) -> list[dict[str, Any]]:
    """Dataset rows: ``prompt`` (chat messages) plus the columns rewards read."""
    from verimath.reasoning.rollout import load_prompt

    d = cfg.data
    if d.strategy == "proof":
        template = load_prompt("cot", d.prompt_file or PROOF_PROMPT)
    else:
        template = load_prompt(d.strategy, d.prompt_file)
    if not d.few_shot:
        from dataclasses import replace

        template = replace(template, few_shot=())
    rows = []
    for p in problems:
        q = p if d.strategy != "proof" else Problem(
            p.id, p.source, f"{p.header or ''}\n{p.formal_statement}".strip())
        rows.append({"prompt": template.messages(q), "answer": p.answer,
                     "formal_statement": p.formal_statement, "header": p.header,
                     "problem_id": p.id})
    return rows


def build_verifiers(cfg: GRPOJobConfig, stack: contextlib.ExitStack) -> VerifierPool:
    """Only the verifiers the configured rewards and tools need; closed by ``stack``."""
    v = cfg.verifier
    need = needed_verifiers(cfg.reward_specs(), cfg.data.strategy)
    if cfg.tools.mode != "none":
        need.add("sandbox")
    pool = VerifierPool(workers=v.workers, item_timeout_s=v.item_timeout_s)
    if "grader" in need:
        from verimath.reasoning.service.factory import GraderSettings, make_grader

        pool.grader = stack.enter_context(make_grader(GraderSettings(
            timeout_s=v.grader_timeout_s, workers=min(v.workers, 4),
            float_rounding=v.grader_float_rounding, numeric_precision=v.grader_numeric_precision,
            strict=v.grader_strict, allow_set_relation_comp=v.grader_set_relation,
            endpoints=v.grader_endpoints)))
    if "sandbox" in need:
        from verimath.reasoning.service.factory import SandboxSettings, make_sandbox

        sandbox = make_sandbox(SandboxSettings(
            timeout_s=v.sandbox_timeout_s, memory_mb=v.sandbox_memory_mb, workers=v.workers,
            endpoints=v.sandbox_endpoints))
        if hasattr(sandbox, "close"):
            stack.callback(sandbox.close)
        pool.sandbox = sandbox
    if "checker" in need:
        pool.checker = make_proof_checker(cfg, stack)
    return pool


def make_proof_checker(cfg: GRPOJobConfig, stack: contextlib.ExitStack) -> Any:
    """The audited whole-proof checker: ``LeanChecker`` over a Lean REPL pool.

    Raises:
        ValueError: no Lean project (set ``verifier.lean_project`` or ``$VERIMATH_LEAN_PROJECT``).
    """
    from verimath.prover.repl import repl_checker

    v = cfg.verifier
    checker = repl_checker(v.lean_project, workers=v.lean_workers, timeout_s=v.proof_timeout_s)
    if checker is None:
        raise ValueError("the proof reward needs a Lean 4 project with Mathlib: set "
                         "verifier.lean_project or $VERIMATH_LEAN_PROJECT")
    stack.callback(checker.close)
    return checker


def grpo_args(cfg: GRPOJobConfig, weights: Sequence[float]) -> Any:
    """``trl.GRPOConfig`` from the job config.

    The ``grpo:`` and ``train:`` sections set their keys; ``trl:`` adds any other GRPOConfig
    field and may not repeat one of theirs (:func:`verimath.rl.config.trl_kwargs`).
    """
    from trl import GRPOConfig

    g = cfg.grpo
    kw: dict[str, Any] = {
        **cfg.train.trainer_kwargs(),
        "output_dir": cfg.output_dir, "reward_weights": list(weights),
        "loss_type": g.loss_type, "beta": g.beta, "epsilon": g.epsilon,
        "epsilon_high": g.epsilon_high, "scale_rewards": g.scale_rewards,
        "num_generations": g.num_generations, "max_completion_length": g.max_completion_length,
        "temperature": g.temperature, "top_p": g.top_p, "num_iterations": g.num_iterations,
        "mask_truncated_completions": g.mask_truncated_completions,
        "use_vllm": g.use_vllm, "vllm_mode": g.vllm_mode,
        "vllm_server_base_url": g.vllm_server_base_url,
        "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization,
        "remove_unused_columns": False,
        "max_tool_calling_iterations": cfg.tools.max_tool_calls,
    }
    from verimath.rl.config import trl_kwargs

    return GRPOConfig(**trl_kwargs(GRPOConfig, kw, cfg.trl, typed_from="grpo / train"))


def grpo_choices(args: Any, names: Sequence[str]) -> dict[str, Any]:
    """The settings that decide what "GRPO" means here (logged and written to the manifest)."""
    keys = ("loss_type", "beta", "epsilon", "epsilon_high", "scale_rewards", "num_generations",
            "max_completion_length", "temperature", "top_p", "num_iterations",
            "mask_truncated_completions", "learning_rate", "per_device_train_batch_size",
            "gradient_accumulation_steps", "use_vllm", "vllm_mode", "reward_weights")
    out = {k: getattr(args, k, None) for k in keys}
    out["reward_names"] = list(names)
    out["reference_model"] = "frozen copy of the initial policy" if args.beta > 0 else \
        "none (beta = 0)"
    return out


def build_grpo_trainer(
    cfg: GRPOJobConfig, pool: VerifierPool, *, model: Any = None, tokenizer: Any = None,
    reward_funcs: list[RewardFn] | None = None, weights: Sequence[float] | None = None,
    verifier_columns: Sequence[bool] | None = None, problems: Sequence[Problem] | None = None,
) -> Any:
    """A :class:`VerifierGRPOTrainer` for ``cfg`` with the configured rewards and tools.

    ``model`` / ``tokenizer`` / ``reward_funcs`` (+ ``weights``, ``verifier_columns``) /
    ``problems`` may be given to reuse loaded objects (tests, benchmarks); otherwise they are
    built from ``cfg``.

    Raises:
        verimath.rl.trl_compat.TrlCompatError: the installed TRL lacks a hook this
            configuration uses (checked before the model loads).
    """
    from datasets import Dataset

    from verimath.rl.trl_compat import check_trl

    check_trl(rollout=cfg.tools.mode == "tir")
    if reward_funcs is None:
        reward_funcs, weights, verifier_columns = build_rewards(
            cfg.reward_specs(), pool, cfg.data.strategy)
    weights = list(weights) if weights is not None else [1.0] * len(reward_funcs)
    verifier_columns = list(verifier_columns) if verifier_columns is not None else \
        [False] * len(reward_funcs)
    path = resolve_model_path(cfg.model) if model is None or tokenizer is None else ""
    tokenizer = tokenizer or load_tokenizer(path, padding_side="left")
    model = model if model is not None else load_causal_lm(path)
    train = list(problems) if problems is not None else grpo_problems(cfg)[0]
    args = grpo_args(cfg, weights)
    extra: dict[str, Any] = {}
    if cfg.tools.mode == "tir":
        from verimath.rl.tools import TirRollout

        extra["rollout_func"] = TirRollout(
            pool.sandbox, cfg.tools.max_tool_calls, cfg.tools.max_tool_output_chars,
            workers=cfg.verifier.workers)
    elif cfg.tools.mode == "env":
        from verimath.rl.tools import PythonSandboxEnv

        sandbox, chars = pool.sandbox, cfg.tools.max_tool_output_chars
        extra["environment_factory"] = lambda: PythonSandboxEnv(sandbox, chars)
    from verimath.rl.trainer import VerifierGRPOTrainer

    log.info("GRPO choices: %s", grpo_choices(args, [getattr(f, "__name__", "?")
                                                     for f in reward_funcs]))
    return VerifierGRPOTrainer(
        model=model, reward_funcs=reward_funcs, args=args,
        train_dataset=Dataset.from_list(prompt_rows(train, cfg)), processing_class=tokenizer,
        peft_config=cfg.lora.to_peft(), verifier_columns=verifier_columns,
        max_infra_failure_steps=cfg.grpo.max_infra_failure_steps, **extra)


def run_grpo(cfg: GRPOJobConfig) -> TrainReport:
    """Train with verifier rewards (resuming when a checkpoint exists) and save ``final/``."""
    started = time.monotonic()
    settings = check_resume_settings(cfg)
    with contextlib.ExitStack() as stack:
        pool = build_verifiers(cfg, stack)
        trainer = build_grpo_trainer(cfg, pool)
        write_manifest("grpo", cfg, cfg.output_dir, model=cfg.model, settings=settings,
                       grpo=grpo_choices(trainer.args, trainer.reward_func_names))
        return run_trainer(trainer, cfg, trainer.processing_class, started)
