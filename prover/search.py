"""Tactic-level best-first proof search (GPT-f, Polu & Sutskever 2020; ReProver, Yang et al. 2023).

The policy proposes ``width`` tactics for a goal state, each with a log-probability; the search
always expands the open state with the best cumulative log-probability (sum over its tactic
path), runs every proposed tactic in the :class:`verimath.prover.types.ProofEnv`, and stops at the
first ``PROVED`` outcome, when no open state is left, or when a budget (expansions, wall seconds) is
spent. States whose goals were already seen are not queued twice. Tactics that fail the
forbidden-construct screen (``sorry``, ``native_decide``, ...) are never sent to Lean.

A tactic that runs Lean out of its time limit (``TacticStatus.TIMEOUT``) is the tactic's own
failure, a failed expansion like a Lean error (issue 18: a policy must not escape a verdict by
proposing tactics that hang Lean). A tactic whose Lean process crashed (``CRASHED``) is an
infrastructure failure: it is counted in :attr:`SearchResult.infra_failures`, and a search that
then ends without a proof is unjudged (status ``INFRA_ERROR``, never "no proof"): the subtree
behind that tactic was never explored.

The proof found is a tactic script; it must still pass the whole-proof audit
(:class:`verimath.prover.types.ProofChecker`), which the prove job runs.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from verimath.prover.types import GoalState, ProofEnv, ProofTask, ProverInfraError, TacticStatus

if TYPE_CHECKING:
    from verimath.backends import Backend, SamplingParams

log = logging.getLogger(__name__)
PROMPT_DIR = Path(__file__).with_name("prompts")


@dataclass(frozen=True)
class Template:
    """A prompt template file (``str.format`` fields) and its content hash."""

    text: str
    hash: str

    def render(self, **fields: str) -> str:
        """The prompt with ``fields`` filled in."""
        return self.text.format(**fields)


def load_template(name_or_path: str) -> Template:
    """Load ``prover/prompts/<name>.txt`` or a file path; the hash goes into run manifests."""
    p = Path(name_or_path)
    if not p.is_file():
        p = PROMPT_DIR / f"{name_or_path}.txt"
    text = p.read_text(encoding="utf-8")
    return Template(text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])


@dataclass(frozen=True, slots=True)
class TacticProposal:
    """A tactic and the policy's log-probability of it (natural log, <= 0)."""

    tactic: str
    logprob: float


class TacticPolicy(Protocol):
    """Proposes tactics for a goal state."""

    def propose(self, task: ProofTask, state: GoalState, width: int) -> list[TacticProposal]:
        """Up to ``width`` distinct tactics, best first."""
        ...


class BackendTacticPolicy:
    """Tactics sampled from a model backend (one line each, scored by cumulative log-prob).

    Args:
        backend: a :class:`verimath.backends.Backend`.
        params: sampling settings; ``n`` is replaced by the search width, ``logprobs`` forced
            on and a newline stop added.
        template: prompt with ``{formal_statement}`` and ``{goal}`` fields.
    """

    def __init__(self, backend: Backend, params: SamplingParams,
                 template: Template | None = None) -> None:
        self.backend = backend
        self.params = params
        self.template = template or load_template("tactic")

    def propose(self, task: ProofTask, state: GoalState, width: int) -> list[TacticProposal]:
        """Sample ``width`` tactics; duplicates merged (best score kept), best first."""
        from dataclasses import replace

        params = replace(self.params, n=width, logprobs=True,
                         stop=tuple(dict.fromkeys((*self.params.stop, "\n"))))
        prompt = self.template.render(formal_statement=task.formal_statement.strip(),
                                      goal=state.pp)
        outs = self.backend.generate([prompt], params)[0]
        best: dict[str, float] = {}
        for rank, c in enumerate(outs):
            tac = c.text.strip()
            if not tac:
                continue
            lp = c.cumulative_logprob if c.cumulative_logprob is not None else -math.log(rank + 2)
            best[tac] = max(best.get(tac, -math.inf), lp)
        return [TacticProposal(t, lp) for t, lp in sorted(best.items(), key=lambda x: -x[1])]


@dataclass(frozen=True)
class SearchConfig:
    """Budgets of one search.

    Attributes:
        width: tactics proposed per expanded state.
        max_expansions: states expanded (policy calls) before giving up.
        wall_s: wall-clock seconds before giving up (checked before every tactic).
        max_depth: longest tactic path expanded.
    """

    width: int = 8
    max_expansions: int = 64
    wall_s: float = 300.0
    max_depth: int = 32

    def __post_init__(self) -> None:
        if self.width < 1 or self.max_expansions < 1 or self.max_depth < 1:
            raise ValueError("search width, max_expansions and max_depth must be >= 1")
        if self.wall_s <= 0:
            raise ValueError(f"search wall_s={self.wall_s}: must be > 0 seconds")


class SearchStatus(StrEnum):
    """Why a search ended."""

    PROVED = "proved"
    EXHAUSTED = "exhausted"  # no open state left
    EXPANSION_BUDGET = "expansion_budget"
    WALL_BUDGET = "wall_budget"
    INFRA_ERROR = "infra_error"  # the env could not go on, or Lean timeouts/crashes cut the
    # search short (never a judgment)


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`best_first_search`.

    Attributes:
        status: see :class:`SearchStatus`.
        tactics: the proof's tactic path (empty unless PROVED).
        expansions: states expanded (policy calls).
        nodes: size of the search tree: distinct states created, the root included.
        tactic_calls: tactics sent to the env.
        outcomes: count of each :class:`TacticStatus` seen.
        wall_s: seconds spent.
        message: the infrastructure error, when status is INFRA_ERROR.
        infra_failures: tactics whose Lean process crashed (not judgments; a tactic's own
            timeout is a failed expansion, counted in ``outcomes["timeout"]``).
    """

    status: SearchStatus
    tactics: tuple[str, ...] = ()
    expansions: int = 0
    nodes: int = 0
    tactic_calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    message: str = ""
    infra_failures: int = 0

    @property
    def judged(self) -> bool:
        """True when the search decided (a proof, or none within budget with no infra failure)."""
        return self.status is not SearchStatus.INFRA_ERROR

    @property
    def proof(self) -> str | None:
        """The tactic script as a proof body (``by`` + indented tactics), or None."""
        return tactics_to_proof(self.tactics) if self.status is SearchStatus.PROVED else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``proof``)."""
        return {
            "status": str(self.status), "tactics": list(self.tactics), "proof": self.proof,
            "expansions": self.expansions, "nodes": self.nodes,
            "tactic_calls": self.tactic_calls, "outcomes": self.outcomes,
            "wall_s": round(self.wall_s, 3), "message": self.message,
            "infra_failures": self.infra_failures,
        }


_INFRA_TACTIC = (TacticStatus.CRASHED,)


def tactics_to_proof(tactics: tuple[str, ...] | list[str]) -> str:
    """``by`` followed by each tactic on its own lines, indented two spaces."""
    lines = [f"  {ln}" for t in tactics for ln in t.strip("\n").split("\n")]
    return "by\n" + "\n".join(lines)


def best_first_search(task: ProofTask, env: ProofEnv, policy: TacticPolicy,
                      cfg: SearchConfig, *, clock: Callable[[], float] = time.monotonic
                      ) -> SearchResult:
    """Best-first search for a proof of ``task`` (see module docstring).

    Args:
        task: the statement (``task.proof`` is ignored).
        env: the tactic environment; ``env.start(task)`` is called here, ``close`` is not.
        policy: proposes tactics.
        cfg: width and budgets.
        clock: seconds, monotonic (tests pass a fake clock).

    Returns:
        A SearchResult. An env failure that cannot be recovered from ends the search with
        status INFRA_ERROR (never reported as "no proof"); so does a search that ends without
        a proof after any Lean timeout/crash (its budget status goes into ``message``).
    """
    t0 = clock()
    counts: Counter[str] = Counter()
    expansions = calls = 0
    try:
        root = env.start(task)
    except ProverInfraError as e:
        return SearchResult(SearchStatus.INFRA_ERROR, wall_s=clock() - t0, message=str(e))
    tie = itertools.count()
    frontier: list[tuple[float, int, float, GoalState]] = [(-0.0, next(tie), 0.0, root)]
    seen = {root.pp}

    def done(status: SearchStatus, tactics: tuple[str, ...] = (), msg: str = "") -> SearchResult:
        infra = sum(counts[str(s)] for s in _INFRA_TACTIC)
        if infra and status not in (SearchStatus.PROVED, SearchStatus.INFRA_ERROR):
            msg = (f"search ended ({status}) after {infra} Lean crash(es) on tactics "
                   "whose subtrees were never explored: unjudged")
            status = SearchStatus.INFRA_ERROR
        return SearchResult(status, tactics, expansions, len(seen), calls, dict(counts),
                            clock() - t0, msg, infra)

    while frontier:
        if expansions >= cfg.max_expansions:
            return done(SearchStatus.EXPANSION_BUDGET)
        if clock() - t0 >= cfg.wall_s:
            return done(SearchStatus.WALL_BUDGET)
        _, _, score, state = heapq.heappop(frontier)
        if len(state.path) >= cfg.max_depth:
            continue
        proposals = policy.propose(task, state, cfg.width)
        expansions += 1
        for prop in proposals[: cfg.width]:
            if clock() - t0 >= cfg.wall_s:
                return done(SearchStatus.WALL_BUDGET)
            try:
                out = env.run_tactic(state, prop.tactic)
            except ProverInfraError as e:
                return done(SearchStatus.INFRA_ERROR, msg=str(e))
            calls += 1
            counts[str(out.status)] += 1
            if out.status is TacticStatus.PROVED and out.state is not None:
                return done(SearchStatus.PROVED, out.state.path)
            if out.status is TacticStatus.OPEN and out.state is not None \
                    and out.state.pp not in seen:
                seen.add(out.state.pp)
                new_score = score + prop.logprob
                heapq.heappush(frontier, (-new_score, next(tie), new_score, out.state))
    return done(SearchStatus.EXHAUSTED)
