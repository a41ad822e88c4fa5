"""``verimath iterate``: expert iteration (rejection-sampling fine-tuning, ReST-EM), per round.

The loop of ReST-EM (Singh et al. 2023, "Beyond Human Data: Scaling Self-Training for
Problem-Solving with Language Models"), RFT (Yuan et al. 2023) and DeepSeek-Prover's "fine-tune
on the newly generated data, repeat", built only from the existing jobs' ``main`` functions:

* round 0: ``verimath.reasoning.evaluation.main`` on the held-out eval slice with the base model;
* round r >= 1: ``verimath.datagen.pipeline.main`` with the current model (N samples per problem,
  verified against gold; from round ``self_samples_from`` on) plus the seed data (the
  ``reference`` datagen mode: programs synthesized from annotated reference solutions and
  verified augmentation, generated once in ``OUT/seed/`` and reused); ``verimath.rl.sft.run_sft`` on
  the union (LoRA merged into ``final/`` by default; ReST-EM trains from the base model every
  round, ``sft_init: previous`` continues from the last round's model); then the same eval.

Output folder::

    manifest.json            the iterate config's whole resolved settings (resume check)
    seed/                    the reference-mode datagen run (data.jsonl, funnel.json, ...)
    round_0/eval/            the base model's eval (summary.json, records.jsonl, ...)
    round_<r>/data/generated/  this round's datagen run with the current model
    round_<r>/data/train.jsonl the SFT union (seed + generated)
    round_<r>/checkpoint/    the SFT run (final/ is the round's model, unless GRPO runs)
    round_<r>/dpo/           the DPO / RPO run of a round with ``dpo`` in ``train``
                             (pairs: ``round_<r>/data/generated/preference.jsonl``)
    round_<r>/grpo/          the optional GRPO run (final/ is then the round's model)
    round_<r>/eval/          the round's eval
    round_<r>/state.json     the phases of the round already done, with their numbers
    rounds.json / rounds.png one row per round (verimath.rl.iterate_report)

Resume rules: every sub-job resumes inside its own folder; a phase recorded in
``state.json`` is not run again (an eval phase also needs its ``summary.json``), so a completed
round is skipped and a half-done one continues at its first unfinished phase; a changed setting
(anything but :data:`ITERATE_NON_RESULT_KEYS`) is refused before anything runs, naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from verimath.datagen.config import DatagenConfig, config_dict
from verimath.jobs import ITERATE_NON_RESULT_KEYS
from verimath.reasoning.evaluation import EvalConfig
from verimath.reasoning.rollout import RolloutConfig, Strategy
from verimath.rl.config import (
    DPOJobConfig,
    GRPODataConfig,
    GRPOJobConfig,
    LoraConfig,
    SFTJobConfig,
    TrainConfig,
)

log = logging.getLogger(__name__)

#: what one round may train, in order (``train:``); ``grpo`` alone starts from the round's
#: initial model, ``sft+grpo`` is ``grpo.enabled: true``
TRAIN_CHOICES = ("sft", "dpo", "sft+dpo", "grpo", "sft+grpo", "sft+dpo+grpo")
#: training step -> its folder under ``round_<r>/``
STEP_DIRS = {"sft": "checkpoint", "dpo": "dpo", "grpo": "grpo"}


def _default_grpo_job() -> GRPOJobConfig:
    return GRPOJobConfig(data=GRPODataConfig(strategy="pot"), lora=LoraConfig(enabled=True),
                         train=TrainConfig(learning_rate=1e-5, max_steps=20))


@dataclass(frozen=True)
class IterateGRPOConfig:
    """An optional GRPO phase after SFT in each round (verifier rewards, ``verimath grpo``).

    Attributes:
        enabled: run the phase; the round's model is then ``round_<r>/grpo/final``.
        job: the GRPO run (``model``, ``output_dir`` and ``data.source`` are set by iterate:
            the SFT model, ``round_<r>/grpo``, and the seed data's problems, which were
            decontaminated, in ``round_<r>/data/grpo_prompts.jsonl``).
    """

    enabled: bool = False
    job: GRPOJobConfig = field(default_factory=_default_grpo_job)


def _default_dpo_job() -> DPOJobConfig:
    return DPOJobConfig(lora=LoraConfig(enabled=True),
                        train=TrainConfig(learning_rate=5e-6, max_steps=20))


@dataclass(frozen=True)
class IterateDPOConfig:
    """The DPO / RPO phase of rounds whose ``train`` has ``dpo``.

    Pairs are the round's own (``export.formats`` of the round's datagen gains ``preference``):
    rejected = the current model's judged-wrong samples; chosen = its verified samples and,
    with ``seed_chosen``, the verified seed rows of the same problem (``chosen_source:
    reference``).

    Attributes:
        job: the DPO run (``model``, ``output_dir`` and ``data.path`` are set by iterate).
        seed_chosen: the seed data's verified rows may be chosen.
    """

    job: DPOJobConfig = field(default_factory=_default_dpo_job)
    seed_chosen: bool = True


def _default_seed() -> DatagenConfig:
    return DatagenConfig(mode="reference")


def _default_datagen() -> DatagenConfig:
    return DatagenConfig(mode="informal", rollout=RolloutConfig(strategy=Strategy.POT))


def _default_sft() -> SFTJobConfig:
    return SFTJobConfig(max_length=512, lora=LoraConfig(enabled=True),
                        train=TrainConfig(learning_rate=2e-4, max_steps=100))


@dataclass(frozen=True)
class IterateConfig:
    """``verimath iterate``: expert iteration (YAML preset under ``configs/iterate/``).

    Attributes:
        model: the base model: "default" (embedded SmolLM2-135M-Instruct), a folder, a hub id.
        out: the output folder (re-run with the same ``out`` to resume).
        rounds: training rounds after round 0 (0: only evaluate the base model).
        self_samples_from: the first round whose SFT data includes the current model's own
            verified samples (1: every round; 2: round 1 trains on the seed data only, as in
            the issue-12 benchmark); rounds before it run no model datagen.
        sft_init: ``base`` (ReST-EM: each round fine-tunes the base model on its data) or
            ``previous`` (continue from the last round's model).
        torch_threads: CPU threads for torch in every sub-job (None: torch's default).
        progress: progress bars of the sub-jobs (stderr).
        report: write ``report.html`` (rounds table and plot, each round linking its eval's
            report) after the last round; the sub-jobs' own ``report`` switches are theirs.
        eval: the eval of every round (identical each round; ``out`` and ``backend.model``
            are set by iterate).
        seed: the ``reference``-mode datagen run that makes the seed data (once).
        datagen: the ``informal``-mode datagen run of each round (``out``/``backend.model``
            set by iterate).
        sft: the SFT run of each round (``model``/``output_dir``/``data.path`` set by iterate).
        grpo: the optional GRPO phase after SFT (off by default).
        train: what each round trains (:data:`TRAIN_CHOICES`): one value for every round, or
            a list with one value per round (the last repeats); ``grpo.enabled: true`` adds
            GRPO after the round's other steps.
        dpo: the DPO phase of rounds that have it.

    Both datagen configs must decontaminate against the eval benchmark (checked here), so
    eval text never reaches training data.
    """

    model: str = "default"
    out: str = "runs/iterate"
    rounds: int = 2
    self_samples_from: int = 1
    sft_init: str = "base"
    torch_threads: int | None = 1
    progress: bool = False
    report: bool = True
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: DatagenConfig = field(default_factory=_default_seed)
    datagen: DatagenConfig = field(default_factory=_default_datagen)
    sft: SFTJobConfig = field(default_factory=_default_sft)
    grpo: IterateGRPOConfig = field(default_factory=IterateGRPOConfig)
    train: tuple[str, ...] = ("sft",)
    dpo: IterateDPOConfig = field(default_factory=IterateDPOConfig)

    def steps(self, r: int) -> list[str]:
        """The training steps of round ``r`` >= 1, in order (``["sft", "dpo"]``)."""
        steps = self.train[min(r, len(self.train)) - 1].split("+")
        return [*steps, "grpo"] if self.grpo.enabled and "grpo" not in steps else steps

    def __post_init__(self) -> None:
        if isinstance(self.train, str):
            object.__setattr__(self, "train", (self.train,))
        bad = [t for t in self.train if t not in TRAIN_CHOICES]
        if bad or not self.train:
            raise ValueError(f"train: {bad or 'empty'}; each round is one of {TRAIN_CHOICES}")
        for r in range(1, self.rounds + 1):
            if "dpo" in self.steps(r) and r < self.self_samples_from:
                raise ValueError(f"train: round {r} has dpo but no model samples before "
                                 f"self_samples_from={self.self_samples_from} (pairs need the "
                                 "model's judged-wrong samples)")
        if self.rounds < 0:
            raise ValueError("rounds must be >= 0 (0: evaluate the base model only)")
        if self.self_samples_from < 1:
            raise ValueError("self_samples_from must be >= 1 (the first round with the "
                             "model's own samples)")
        if self.sft_init not in ("base", "previous"):
            raise ValueError("sft_init must be 'base' (ReST-EM) or 'previous'")
        if self.seed.mode != "reference":
            raise ValueError(f"seed.mode must be 'reference' (got {self.seed.mode!r})")
        if self.datagen.mode != "informal":
            raise ValueError(f"datagen.mode must be 'informal' (got {self.datagen.mode!r})")
        for name in ("eval", "seed", "datagen"):
            if getattr(self, name).shard is not None:
                raise ValueError(f"{name}.shard: iterate runs whole jobs; leave it null")
        for name in ("seed", "datagen"):
            d = getattr(self, name).decontam
            if not d.enabled or self.eval.benchmark not in d.benchmarks:
                raise ValueError(
                    f"{name}.decontam must be enabled and list the eval benchmark "
                    f"{self.eval.benchmark!r} (got enabled={d.enabled}, benchmarks="
                    f"{list(d.benchmarks)}): eval text must never reach training data")
        uses_grpo = any("grpo" in self.steps(r) for r in range(1, self.rounds + 1))
        if uses_grpo and self.grpo.job.data.strategy != str(self.eval.rollout.strategy):
            raise ValueError(f"grpo.job.data.strategy must be the eval strategy "
                             f"{self.eval.rollout.strategy} (got {self.grpo.job.data.strategy})")
        for name, lora in (("sft", self.sft.lora), ("grpo.job", self.grpo.job.lora),
                           ("dpo.job", self.dpo.job.lora)):
            if lora.enabled and not lora.merge_on_save:
                raise ValueError(f"{name}.lora.merge_on_save must be true: the next round's "
                                 "eval and datagen load the merged final/ model")


def iterate_config_dict(cfg: IterateConfig) -> dict[str, Any]:
    """``cfg`` as a JSON-ready nested dict (the manifest's ``config``)."""
    d = dataclasses.asdict(cfg)
    d["seed"], d["datagen"] = config_dict(cfg.seed), config_dict(cfg.datagen)
    d["eval"]["rollout"]["strategy"] = str(cfg.eval.rollout.strategy)
    return d


def iterate_settings(cfg: IterateConfig) -> dict[str, Any]:
    """The settings every round depends on (a flat dict; a change is refused on resume)."""
    from verimath.jobs import settings_of

    return settings_of(iterate_config_dict(cfg), ignore=ITERATE_NON_RESULT_KEYS)


@dataclass(frozen=True)
class IterateReport:
    """What :func:`run_iterate` returns.

    Attributes:
        out: the output folder.
        rounds: the rows of ``rounds.json`` (see :func:`verimath.rl.iterate_report.round_row`).
    """

    out: Path
    rounds: list[dict[str, Any]]


#: ``backend_for(model_path) -> Backend``: a prebuilt backend for a round's model (tests); None
#: lets each sub-job load its own from its config.
BackendFactory = Callable[[str], Any]


# ---------------------------------------------------------------------------- sub-jobs
# Module-level so tests can wrap them to count calls or simulate a kill.


def run_eval(cfg: EvalConfig, backend: Any, progress: bool) -> dict[str, Any]:
    """``verimath.reasoning.evaluation.main``; returns the summary dict."""
    from verimath.reasoning.evaluation import main

    return main(cfg, progress=progress, backend=backend).summary


def run_datagen(cfg: DatagenConfig, backend: Any) -> dict[str, Any]:
    """``verimath.datagen.pipeline.main``; returns ``{counts, timing}``."""
    from verimath.datagen.pipeline import Components, main

    rep = main(cfg, components=Components(backend=backend))
    return {"counts": dict(rep.counts), "timing": dict(rep.timing)}


def run_sft(cfg: SFTJobConfig) -> dict[str, Any]:
    """``verimath.rl.sft.run_sft``; returns ``{final_dir, global_step, seconds, loss}``."""
    from verimath.rl.sft import run_sft as sft

    rep = sft(cfg)
    return {"final_dir": rep.final_dir, "global_step": rep.global_step,
            "seconds": round(rep.seconds, 3),
            "loss": [h["loss"] for h in rep.log_history if "loss" in h]}


def run_grpo(cfg: GRPOJobConfig) -> dict[str, Any]:
    """``verimath.rl.grpo.run_grpo``; returns ``{final_dir, global_step, seconds, reward}``."""
    from verimath.rl.grpo import run_grpo as grpo

    rep = grpo(cfg)
    return {"final_dir": rep.final_dir, "global_step": rep.global_step,
            "seconds": round(rep.seconds, 3),
            "reward": [h["reward"] for h in rep.log_history if "reward" in h]}


def run_dpo(cfg: DPOJobConfig) -> dict[str, Any]:
    """``verimath.rl.dpo.run_dpo``; returns steps, seconds, pairs, losses and reward margins.

    ``margins`` / ``reward_accuracy``: per logged step, TRL's ``rewards/margins`` (beta x
    log-ratio of chosen minus rejected vs the reference) and ``rewards/accuracies``.
    """
    from verimath.rl.dpo import run_dpo as dpo

    rep = dpo(cfg)
    logs = rep.log_history
    return {"final_dir": rep.final_dir, "global_step": rep.global_step,
            "seconds": round(rep.seconds, 3), "pairs": rep.extra.get("pairs"),
            "loss": [h["loss"] for h in logs if "loss" in h],
            "margins": [h["rewards/margins"] for h in logs if "rewards/margins" in h],
            "reward_accuracy": [h["rewards/accuracies"] for h in logs
                                if "rewards/accuracies" in h]}


def _pair_count(path: Path) -> int:
    return len(_jsonl_rows(path))


# ------------------------------------------------------------------------------ phases


class _State:
    """``state.json`` of a round: phase name -> its stored result (atomic rewrites)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.phases: dict[str, Any] = (json.loads(path.read_text(encoding="utf-8"))["phases"]
                                       if path.exists() else {})

    def run(self, name: str, fn: Callable[[], dict[str, Any]],
            done: Callable[[], bool] = lambda: True) -> dict[str, Any]:
        """The stored result of phase ``name`` when it is done, else ``fn()`` stored."""
        from verimath.store import atomic_write_json

        if name in self.phases and done():
            log.info("%s: phase %s already done", self.path.parent.name, name)
            return self.phases[name]
        t0 = time.perf_counter()
        res = fn()
        res["wall_s"] = round(time.perf_counter() - t0, 3)
        self.phases[name] = res
        atomic_write_json(self.path, {"phases": self.phases})
        return res


def _jsonl_rows(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _grpo_prompts(seed_data: Path, dest: Path) -> dict[str, Any]:
    """Write the distinct problems of the seed data (decontaminated) as GRPO prompts."""
    from verimath.store import atomic_write_text

    seen: dict[str, str] = {}
    for line in _jsonl_rows(seed_data):
        prob = json.loads(line)["problem"]
        seen.setdefault(str(prob["id"]), json.dumps(prob, ensure_ascii=False))
    atomic_write_text(dest, "".join(v + "\n" for v in seen.values()))
    return {"problems": len(seen)}


def _union(seed_data: Path, generated: Path | None, dest: Path) -> dict[str, Any]:
    """Write the SFT union ``dest`` (seed rows, then generated rows); return the counts."""
    from verimath.store import atomic_write_text

    seed_rows = _jsonl_rows(seed_data)
    gen_rows = _jsonl_rows(generated) if generated is not None else []
    atomic_write_text(dest, "".join(r + "\n" for r in seed_rows + gen_rows))
    return {"seed": len(seed_rows), "generated": len(gen_rows),
            "train": len(seed_rows) + len(gen_rows)}


class _Loop:
    """One ``run_iterate`` call: the config, the folder and the backend factory."""

    def __init__(self, cfg: IterateConfig, backend_for: BackendFactory | None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.backend_for = backend_for

    def _backend(self, model: str) -> Any:
        return self.backend_for(model) if self.backend_for is not None else None

    def model_of(self, r: int) -> str:
        """The model after round ``r`` (round 0: the base model).

        The ``final/`` of the round's last step that saved one (a DPO step with no pair
        saves none), else the model the round started from.
        """
        if r == 0:
            return self.cfg.model
        for step in reversed(self.cfg.steps(r)):
            final = self.out / f"round_{r}" / STEP_DIRS[step] / "final"
            if (final / "config.json").exists():
                return str(final)
        return self.init_of(r)

    def init_of(self, r: int) -> str:
        """The model round ``r`` starts from: the base (``sft_init: base``) or round r-1's."""
        return self.cfg.model if self.cfg.sft_init == "base" else self.model_of(r - 1)

    def evaluate(self, r: int, state: _State) -> dict[str, Any]:
        """The eval phase of round ``r``."""
        out = self.out / f"round_{r}" / "eval"
        model = self.model_of(r)
        cfg = replace(self.cfg.eval, out=str(out),
                      backend=replace(self.cfg.eval.backend, model=model))

        def go() -> dict[str, Any]:
            if self.cfg.torch_threads:
                import torch

                torch.set_num_threads(self.cfg.torch_threads)
            return {"summary": run_eval(cfg, self._backend(model), self.cfg.progress)}

        return state.run("eval", go, done=(out / "summary.json").exists)

    def seed(self) -> dict[str, Any]:
        """The seed data (reference-mode datagen, once for all rounds)."""
        out = self.out / "seed"
        cfg = replace(self.cfg.seed, out=str(out), torch_threads=self.cfg.torch_threads)
        return _State(out / "iterate_state.json").run(
            "seed", lambda: run_datagen(cfg, None), done=(out / "manifest.json").exists)

    def train_round(self, r: int, state: _State) -> dict[str, Any]:
        """Datagen (when due), union and the round's training steps; returns phase results."""
        c = self.cfg
        rdir = self.out / f"round_{r}"
        steps = c.steps(r)
        res: dict[str, Any] = {"seed": self.seed(), "steps": steps}
        generated: Path | None = None
        if r >= c.self_samples_from:
            gen_out = rdir / "data" / "generated"
            gen_model = self.model_of(r - 1)
            dcfg = replace(c.datagen, out=str(gen_out), torch_threads=c.torch_threads,
                           backend=replace(c.datagen.backend, model=gen_model))
            if "dpo" in steps:
                dcfg = self._with_pairs(dcfg)
            res["datagen"] = state.run("datagen", lambda: run_datagen(
                dcfg, self._backend(gen_model)), done=(gen_out / "manifest.json").exists)
            generated = gen_out / "data.jsonl"
        train = rdir / "data" / "train.jsonl"
        res["union"] = state.run("union", lambda: _union(
            self.out / "seed" / "data.jsonl", generated, train), done=train.exists)
        model = self.init_of(r)
        for step in steps:
            model = getattr(self, f"_{step}")(r, model, state, res)
        return res

    def _with_pairs(self, dcfg: DatagenConfig) -> DatagenConfig:
        """The round's datagen config exporting preference pairs (seed rows may be chosen)."""
        ex = dcfg.export
        formats = ex.formats if "preference" in ex.formats else (*ex.formats, "preference")
        pref = replace(ex.preference, reference=str(self.out / "seed" / "data.jsonl")) \
            if self.cfg.dpo.seed_chosen else ex.preference
        return replace(dcfg, export=replace(ex, formats=formats, preference=pref))

    def _sft(self, r: int, model: str, state: _State, res: dict[str, Any]) -> str:
        c, rdir = self.cfg, self.out / f"round_{r}"
        scfg = replace(c.sft, model=model, output_dir=str(rdir / "checkpoint"),
                       data=replace(c.sft.data, path=str(rdir / "data" / "train.jsonl")),
                       train=replace(c.sft.train, torch_threads=c.torch_threads))
        final = rdir / "checkpoint" / "final"
        res["sft"] = state.run("sft", lambda: {**run_sft(scfg), "init": model},
                               done=(final / "config.json").exists)
        return str(final)

    def _dpo(self, r: int, model: str, state: _State, res: dict[str, Any]) -> str:
        c, rdir = self.cfg, self.out / f"round_{r}"
        pairs = rdir / "data" / "generated" / "preference.jsonl"
        job = c.dpo.job
        dcfg = replace(job, model=model, output_dir=str(rdir / "dpo"),
                       data=replace(job.data, path=str(pairs)),
                       train=replace(job.train, torch_threads=c.torch_threads))
        final = rdir / "dpo" / "final"

        def go() -> dict[str, Any]:
            n = _pair_count(pairs)
            if not n:  # nothing to prefer: the round keeps the model it had
                log.warning("round %d: no preference pairs; DPO skipped", r)
                return {"pairs": 0, "skipped": "no preference pairs", "init": model}
            return {**run_dpo(dcfg), "init": model}

        res["dpo"] = state.run("dpo", go, done=lambda: (final / "config.json").exists()
                               or bool(state.phases.get("dpo", {}).get("skipped")))
        return str(final) if not res["dpo"].get("skipped") else model

    def _grpo(self, r: int, model: str, state: _State, res: dict[str, Any]) -> str:
        c, rdir = self.cfg, self.out / f"round_{r}"
        prompts = rdir / "data" / "grpo_prompts.jsonl"
        res["grpo_prompts"] = state.run("grpo_prompts", lambda: _grpo_prompts(
            self.out / "seed" / "data.jsonl", prompts), done=prompts.exists)
        job = c.grpo.job
        gcfg = replace(job, model=model, output_dir=str(rdir / "grpo"),
                       data=replace(job.data, source=str(prompts)),
                       train=replace(job.train, torch_threads=c.torch_threads))
        res["grpo"] = state.run("grpo", lambda: run_grpo(gcfg),
                                done=(rdir / "grpo" / "final" / "config.json").exists)
        return str(rdir / "grpo" / "final")


def run_iterate(cfg: IterateConfig, *, backend_for: BackendFactory | None = None
                ) -> IterateReport:
    """Run (or resume) expert iteration into ``cfg.out``; see the module docstring.

    Args:
        cfg: the run's settings.
        backend_for: ``model_path -> Backend`` used for generation in eval and datagen (tests
            pass a scripted backend); None: each sub-job loads its model from its config.

    Returns:
        IterateReport; ``rounds.json``, ``rounds.png`` are written after every round.

    Raises:
        verimath.jobs.SettingsMismatch: ``cfg.out`` holds a run with different settings
            (names the keys); nothing is written.
        ValueError / FileNotFoundError: from the sub-jobs (bad data, missing benchmark...).
    """
    from verimath.jobs import SettingsMismatch, check_settings, fingerprint_of
    from verimath.manifest import build_manifest
    from verimath.rl.iterate_report import round_row, write_rounds
    from verimath.store import atomic_write_json

    out = Path(cfg.out)
    settings = iterate_settings(cfg)
    has_work = out.is_dir() and (any(out.glob("round_*")) or (out / "seed").exists())
    if has_work and not (out / "manifest.json").exists():
        raise SettingsMismatch(str(out), {}, message=(
            f"{out} holds iterate rounds but no manifest.json, so a resume cannot check their "
            "settings; use another --out, or delete the folder to start over"))
    check_settings(out / "manifest.json", settings, has_work=has_work)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "manifest.json", build_manifest(
        "iterate", iterate_config_dict(cfg), settings=settings,
        fingerprint=fingerprint_of(settings)))
    loop = _Loop(cfg, backend_for)
    rows: list[dict[str, Any]] = []
    for r in range(cfg.rounds + 1):
        state = _State(out / f"round_{r}" / "state.json")
        phases = loop.train_round(r, state) if r else {}
        phases["eval"] = loop.evaluate(r, state)
        rows.append(round_row(r, phases, cfg, out))
        write_rounds(out, rows)
        log.info("round %d: accuracy %s", r, rows[-1]["accuracy"])
    if cfg.report:
        from verimath.view import write_job_report

        write_job_report(out)
    return IterateReport(out=out, rounds=rows)
