"""Settings of a ``verimath datagen`` run (YAML preset under ``configs/datagen/`` + overrides)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from verimath.backends import BackendConfig
from verimath.datagen.preference import PreferenceConfig
from verimath.reasoning.rollout import RolloutConfig, Strategy
from verimath.reasoning.service.factory import GraderSettings, SandboxSettings

PROMPT_DIR = Path(__file__).with_name("prompts")
MODES = ("informal", "formal", "both", "reference")
EXPORT_FORMATS = ("jsonl", "parquet", "hf", "preference")


@dataclass(frozen=True)
class DecontamConfig:
    """Decontamination against benchmark test sets.

    Attributes:
        enabled: run the stage.
        benchmarks: specs for ``verimath.datasets.load_problems`` (``gsm8k`` is GSM8K test,
            ``math500``, ``minif2f``, ``proofnet``, a path, a hub id); ``spec:split`` keeps one
            split, e.g. ``minif2f:test``.
        ngram: n-gram length in words (13: Brown et al. 2020).
        min_overlap: shared n-grams that flag a problem (1: any).
    """

    enabled: bool = True
    benchmarks: tuple[str, ...] = ("gsm8k", "math500")
    ngram: int = 13
    min_overlap: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.benchmarks, str):
            object.__setattr__(self, "benchmarks", (self.benchmarks,))
        if self.ngram < 1:
            raise ValueError("decontam.ngram must be >= 1 word (13 is the usual value)")
        if self.min_overlap < 1:
            raise ValueError("decontam.min_overlap must be >= 1")


@dataclass(frozen=True)
class SolveConfig:
    """Informal solving: N sampled PoT/TIR rollouts per problem, verified.

    Attributes:
        n: samples per problem.
        temperature / top_p / max_tokens / seed: sampling.
        majority: self-consistency for problems without a known answer: the most common
            answer is kept when it is given by at least this share of the ``n`` samples.
        min_votes: ... and by at least this many samples.
        max_per_problem: most verified trajectories kept per problem (distinct texts, in
            sample order).
        drop_finish_reasons: attempts ending this way are not kept even with a right answer
            (truncated text is bad SFT data).
    """

    n: int = 4
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 0
    majority: float = 0.5
    min_votes: int = 2
    max_per_problem: int = 4
    drop_finish_reasons: tuple[str, ...] = ("length", "tool_limit")

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("solve.n (samples per problem) must be >= 1")
        if not 0.0 < self.majority <= 1.0:
            raise ValueError("solve.majority must be a share in (0, 1], e.g. 0.5")
        if self.min_votes < 1:
            raise ValueError("solve.min_votes must be >= 1")
        if self.max_per_problem < 1:
            raise ValueError("solve.max_per_problem must be >= 1")


@dataclass(frozen=True)
class ProverSettings:
    """Proving statements and their negations.

    Attributes:
        backend: the ProofChecker behind the compile filter and the proof audit: ``repl``
            (the default: Lean REPL pool with the full audit; needs Lean + Mathlib, and
            without them the run stops before any stage with the ``verimath doctor`` message)
            or ``scripted`` (the prover's test double, for tests and demos only: runs the real
            text-level audit, compiles every statement that parses and accepts no proof, so
            every statement ends "open"). Every record a double produced says so in its
            provenance (``checker.test_double``), and export refuses double-verified rows
            unless ``export.allow_scripted``.
        attempts: whole-proof candidates sampled per statement and per negation (the search
            budget of DeepSeek-Prover-style whole-proof generation).
        workers: Lean REPL processes (``repl``).
        timeout_s: wall-clock limit per check, in seconds.
        prove_negation: also try to prove the negation (drops false formalizations).
        project_dir: Lean project with Mathlib (``repl``); None reads ``$VERIMATH_LEAN_PROJECT``.
        url: a kimina-lean-server base URL (``kimina``: whole-proof checks over ``POST
            /verify``, see :mod:`verimath.prover.kimina`; the same audit runs on top).
        api_key_env: environment variable holding the kimina server's API key (never stored
            in a config or manifest).
    """

    backend: str = "repl"
    attempts: int = 2
    workers: int = 2
    timeout_s: float = 60.0
    prove_negation: bool = True
    project_dir: str | None = None
    url: str | None = None
    api_key_env: str = "KIMINA_API_KEY"

    def __post_init__(self) -> None:
        if self.backend not in ("scripted", "repl", "kimina"):
            raise ValueError("prover.backend must be 'repl', 'kimina' or 'scripted' "
                             f"(got {self.backend!r})")
        if self.backend == "kimina" and not self.url:
            raise ValueError("prover.backend 'kimina' needs prover.url (http://host:port)")
        if self.attempts < 0:
            raise ValueError("prover.attempts must be >= 0")
        if self.workers < 1:
            raise ValueError("prover.workers must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("prover.timeout_s must be > 0 seconds")


@dataclass(frozen=True)
class FormalConfig:
    """Autoformalization, back-translation and the consistency judge.

    Attributes:
        autoformalize_prompt / backtranslate_prompt / judge_prompt / prove_prompt: YAML
            few-shot prompt files; None uses ``datagen/prompts/<name>.yaml``.
        n_formalizations: statements sampled per problem.
        temperature / max_tokens / seed: sampling for the three model steps (the judge is greedy).
        use_given_statement: a problem that already has a formal statement keeps it instead of
            being autoformalized.
        judge_model: a (larger) model for the judge; None uses the generation model.
        prover: proving settings.
    """

    autoformalize_prompt: str | None = None
    backtranslate_prompt: str | None = None
    judge_prompt: str | None = None
    prove_prompt: str | None = None
    n_formalizations: int = 2
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int = 0
    use_given_statement: bool = False
    judge_model: str | None = None
    prover: ProverSettings = field(default_factory=ProverSettings)

    def __post_init__(self) -> None:
        if self.n_formalizations < 1:
            raise ValueError("formal.n_formalizations must be >= 1")

    def prompt_path(self, name: str) -> Path:
        """The prompt file for ``autoformalize`` / ``backtranslate`` / ``judge`` / ``prove``."""
        given = getattr(self, f"{name}_prompt")
        return Path(given) if given else PROMPT_DIR / f"{name}.yaml"


@dataclass(frozen=True)
class ExportConfig:
    """What the export writes.

    Attributes:
        formats: any of ``jsonl``, ``parquet``, ``hf`` (``save_to_disk``) and ``preference``
            (``preference.jsonl``: verified vs judged-wrong pairs for DPO,
            :mod:`verimath.datagen.preference`; informal modes only).
        preference: the pairing policy of the ``preference`` format.
        push_to_hub: hub repo id to push the dataset to; None pushes nothing.
        private: create the hub repo private.
        rejected_attempts: also list single rejected attempts (not only rejected problems) in
            ``rejected.jsonl`` (useful as negatives for preference data).
        allow_scripted: export rows verified by a test double (the ``scripted`` prover);
            without it such rows stop the export with an error (``--allow-scripted``).
    """

    formats: tuple[str, ...] = ("jsonl", "parquet", "hf")
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    push_to_hub: str | None = None
    private: bool = True
    rejected_attempts: bool = True
    allow_scripted: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.formats, str):
            object.__setattr__(self, "formats", (self.formats,))
        bad = set(self.formats) - set(EXPORT_FORMATS)
        if bad:
            raise ValueError(f"export.formats: unknown {sorted(bad)}; use "
                             f"{', '.join(EXPORT_FORMATS)}")


# ---- reference-guided synthesis and verified augmentation (mode "reference";
# verimath.datagen.synth)


@dataclass(frozen=True)
class AugmentConfig:
    """Verified augmentation of synthesized programs (MuMath-Code / FOBAR style).

    Attributes:
        numeric_variants: new problems per verified program with changed input constants.
        backward: backward questions per verified program (one input masked, the original
            answer given, the masked value asked for).
        max_tries: value draws per numeric variant before it is dropped (a draw is dropped
            when a count becomes a fraction or negative).
        seed: seed of the value draws.
    """

    numeric_variants: int = 1
    backward: int = 1
    max_tries: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.numeric_variants < 0 or self.backward < 0:
            raise ValueError("synth.augment.numeric_variants / backward must be >= 0 (0: none)")
        if self.max_tries < 1:
            raise ValueError("synth.augment.max_tries must be >= 1")


@dataclass(frozen=True)
class SynthConfig:
    """Reference-guided synthesis: programs from annotated reference solutions.

    Attributes:
        formats: trajectories written per verified program: ``pot`` and/or ``tir``.
        batch_size: problems per stage batch (one sandbox ``run_many`` each).
        augment: verified augmentation settings.
    """

    formats: tuple[str, ...] = ("pot", "tir")
    batch_size: int = 64
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.formats, str):
            object.__setattr__(self, "formats", (self.formats,))
        bad = set(self.formats) - {"pot", "tir"}
        if bad or not self.formats:
            raise ValueError(f"synth.formats: use pot and/or tir (got {list(self.formats)})")
        if self.batch_size < 1:
            raise ValueError("synth.batch_size must be >= 1")


# ---- end of reference-synthesis settings


@dataclass(frozen=True)
class DatagenConfig:
    """One datagen run.

    Attributes:
        mode: ``informal`` (solve with PoT/TIR), ``formal`` (autoformalize, filter, prove),
            ``both``, or ``reference`` (no model: programs from annotated reference solutions,
            verified by execution, plus verified augmentation; see ``synth``).
        inputs: problem sources (``gsm8k_train``, ``minif2f``, a .jsonl/.parquet path, a hub id).
        split / limit: keep one split; first ``limit`` problems per input (None: all).
        question_field / answer_field / id_field: explicit field mapping of the inputs
            (:class:`verimath.layouts.FieldMap`: dotted paths, or a template such as
            ``"{Body} {Question}"`` for the question); None detects the layout per record.
            Inputs without a gold answer are solved by self-consistency (``solve.majority``).
        out: the run folder; re-running with the same ``out`` resumes.
        dedup: drop repeated problems (normalized-text hash).
        max_inflight: batches generated but not yet verified (overlap of generation and
            verification); 0 verifies each batch inline before the next one generates.
        infra_retries: how many more times a resume runs a work item whose outcome could not
            be judged (sandbox error, grader timeout, Lean timeout / crash); 0 keeps the first
            outcome. What stays unjudged is counted in the funnel (``unjudged``).
        torch_threads: CPU threads for torch (None: torch's default). On a small shared CPU,
            1 can be several times faster than oversubscribed threads.
        shard: ``"I/N"``: after dedup and decontamination (which see every input), solve /
            formalize only shard ``I`` (0-based) of ``N`` of the problems, split by item key;
            ``verimath merge`` joins the shard folders. None: every problem.
        report: write ``report.html`` (``verimath view``: funnel, drop reasons, rows) at the end.
        decontam / backend / rollout / sandbox / grader / solve / formal / synth / export:
            components.
    """

    mode: str = "informal"
    inputs: tuple[str, ...] = ("gsm8k_train",)
    split: str | None = None
    limit: int | None = None
    question_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    out: str = "runs/datagen"
    dedup: bool = True
    max_inflight: int = 2
    infra_retries: int = 2
    torch_threads: int | None = None
    shard: str | None = None
    report: bool = True
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(strategy=Strategy.POT))
    sandbox: SandboxSettings = field(default_factory=lambda: SandboxSettings(timeout_s=5.0))
    grader: GraderSettings = field(default_factory=GraderSettings)
    solve: SolveConfig = field(default_factory=SolveConfig)
    formal: FormalConfig = field(default_factory=FormalConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str):
            object.__setattr__(self, "inputs", (self.inputs,))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES} (got {self.mode!r})")
        if not self.inputs:
            raise ValueError("inputs: list at least one problem source (e.g. gsm8k_train)")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 or null")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError("torch_threads must be >= 1 or null (torch's default)")
        if self.max_inflight < 0:
            raise ValueError("max_inflight must be >= 0 (0: no overlap)")
        if self.infra_retries < 0:
            raise ValueError("infra_retries must be >= 0")
        from verimath.jobs import parse_shard

        parse_shard(self.shard)


def config_dict(cfg: DatagenConfig) -> dict[str, Any]:
    """``cfg`` as a JSON-ready nested dict (the manifest's ``config``)."""
    d = asdict(cfg)
    d["rollout"]["strategy"] = str(cfg.rollout.strategy)
    return d


def stage_settings(cfg: DatagenConfig, only: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """A stage's settings: the config keys under ``only`` (minus ``NON_RESULT_KEYS``) + ``extra``.

    Args:
        cfg: the run config.
        only: dotted prefixes of the sections the stage reads (``("backend", "solve")``).
        **extra: results-changing things outside the config (model id, prompt hash...).

    Returns:
        The flat dict :func:`verimath.jobs.settings_of` returns; its hash is the stage's
        fingerprint and a change to it is refused on resume.
    """
    from verimath.jobs import settings_of

    return settings_of(config_dict(cfg), only=only, extra=extra)
