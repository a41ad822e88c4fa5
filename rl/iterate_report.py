"""The per-round outputs of ``verimath iterate``: ``rounds.json``, a rich table, ``rounds.png``.

One row per round (:func:`round_row`), built only from what the sub-jobs reported:

* ``accuracy`` / ``accuracy_ci95``: the eval summary's accuracy (= pass@1 over judged samples)
  and its 95% Wilson interval over problems; None when nothing was judged ("could not judge",
  never 0); ``n_problems``, ``n_judged`` and ``n_infra_failures`` say why;
* ``verified_yield``: verified samples / attempts of the round's model datagen (the ``solve``
  stage of its funnel: attempts = problems solved x ``solve.n``; verified = kept trajectories +
  verified attempts dropped as duplicates or over the per-problem cap); None in rounds without
  model datagen;
* ``gain_vs_base``: accuracy of the round minus the base model's on the same problems, with a
  paired-bootstrap 95% CI (:func:`paired_gain`); None in round 0;
* ``data``: SFT rows from the seed data, from the model's own samples, and in all;
* ``train``: the round's training steps (``["sft", "dpo"]``); ``pairs``: preference pairs of
  the round (DPO rounds); ``reward_margin`` / ``reward_accuracy``: DPO's last logged reward
  margin (beta x log-ratio of chosen minus rejected vs the reference model) and the share of
  pairs whose chosen reward is higher; None without a DPO step;
* ``decontamination``: per datagen run, problems dropped by each ``decontaminate*`` stage
  (n-gram overlap with the benchmarks listed), and how many entered it;
* ``timing`` (seconds; the only part that differs between two runs of the same settings):
  ``generation_s`` (model time in datagen), ``verification_s`` (grading / checking in datagen),
  ``training_s`` (SFT), ``dpo_s`` (DPO), ``grpo_s`` (GRPO, when on), ``eval_s``, ``seed_s``
  (reference synthesis) and each phase's wall time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _funnel(out: Path) -> list[dict[str, Any]]:
    import json

    p = out / "funnel.json"
    return json.loads(p.read_text(encoding="utf-8"))["stages"] if p.exists() else []


def decontam_counts(out: Path) -> dict[str, dict[str, int]]:
    """``{stage: {"entered": n, "dropped": m}}`` of the ``decontaminate*`` stages of a run."""
    return {s["stage"]: {"entered": int(s["entered"]), "dropped": int(sum(s["dropped"].values()))}
            for s in _funnel(out) if s["stage"].startswith("decontaminate")}


def verified_yield(out: Path, n: int) -> dict[str, Any]:
    """``{verified, attempts, kept, verified_yield}`` of a model datagen run's solve stage."""
    solve = next((s for s in _funnel(out) if s["stage"] == "solve"), None)
    if solve is None:
        return {"verified": None, "attempts": None, "kept": None, "verified_yield": None}
    rej = solve.get("rejected_out") or {}
    kept = int(solve["produced"])
    verified = kept + int(rej.get("duplicate_attempt", 0)) + int(rej.get("over_cap", 0))
    attempts = int(solve["entered"]) * n
    return {"verified": verified, "attempts": attempts, "kept": kept,
            "verified_yield": verified / attempts if attempts else None}


def round_row(r: int, phases: dict[str, Any], cfg: Any, out: Path) -> dict[str, Any]:
    """The ``rounds.json`` row of round ``r`` from its phase results (see module docstring)."""
    s = phases["eval"]["summary"]
    acc = _num(s.get("accuracy"))
    ci = s.get("accuracy_ci95") or [None, None]
    row: dict[str, Any] = {
        "round": r, "model": "base" if r == 0 else _model_name(r, phases),
        "accuracy": acc, "accuracy_ci95": [_num(ci[0]), _num(ci[1])] if acc is not None
        else [None, None],
        "n_problems": s.get("n_problems"), "n_judged": s.get("n_judged"),
        "n_infra_failures": s.get("n_infra_failures"),
        "verified": None, "attempts": None, "kept": None, "verified_yield": None,
        "gain_vs_base": None, "data": None, "decontamination": None, "sft_steps": None,
        "grpo_steps": None, "train": phases.get("steps"), "dpo_steps": None, "pairs": None,
        "reward_margin": None, "reward_accuracy": None,
    }
    timing: dict[str, float] = {"eval_s": phases["eval"].get("wall_s", 0.0)}
    if r:
        rdir = out / f"round_{r}"
        row["gain_vs_base"] = paired_gain(out / "round_0" / "eval", rdir / "eval")
        row["data"] = {k: phases["union"][k] for k in ("seed", "generated", "train")}
        dec = {"benchmarks": list(cfg.seed.decontam.benchmarks),
               "seed": decontam_counts(out / "seed")}
        if "datagen" in phases:
            gen = rdir / "data" / "generated"
            row.update(verified_yield(gen, cfg.datagen.solve.n))
            dec["generated"] = decontam_counts(gen)
            t = phases["datagen"].get("timing", {})
            timing.update(generation_s=t.get("model_generate_s", 0.0),
                          verification_s=t.get("verify", 0.0),
                          datagen_s=phases["datagen"].get("wall_s", 0.0))
        row["decontamination"] = dec
        if "sft" in phases:
            row["sft_steps"] = phases["sft"].get("global_step")
            timing["training_s"] = phases["sft"].get("seconds", 0.0)
        if "dpo" in phases:
            d = phases["dpo"]
            row.update(dpo_steps=d.get("global_step"), pairs=d.get("pairs"),
                       reward_margin=(d.get("margins") or [None])[-1],
                       reward_accuracy=(d.get("reward_accuracy") or [None])[-1])
            timing["dpo_s"] = d.get("seconds", 0.0)
        if "grpo" in phases:
            row["grpo_steps"] = phases["grpo"].get("global_step")
            timing["grpo_s"] = phases["grpo"].get("seconds", 0.0)
        timing["seed_s"] = phases["seed"].get("wall_s", 0.0)
    row["timing"] = {k: round(float(v), 3) for k, v in sorted(timing.items())}
    return row


def _model_name(r: int, phases: dict[str, Any]) -> str:
    """The round's model folder: its last step that saved a model (a DPO with no pair none)."""
    dirs = {"sft": "checkpoint", "dpo": "dpo", "grpo": "grpo"}
    for step in reversed(phases.get("steps") or ["sft"]):
        if step in phases and not phases[step].get("skipped"):
            return f"round_{r}/{dirs[step]}/final"
    return "the round's initial model"


def _pct(x: float | None) -> str:
    return "not judged" if x is None else f"{100 * x:.1f}%"


def rounds_table(rows: list[dict[str, Any]]) -> Any:
    """A ``rich.table.Table``: one line per round."""
    from rich.table import Table

    t = Table(title="expert iteration (verimath iterate)", caption="times in seconds; "
              "decontam dropped: problems sharing an n-gram with the benchmarks")
    for col in ("round", "accuracy [95% CI]", "gain vs base [95% CI]", "verified yield",
                "SFT rows seed+own", "pairs", "reward margin", "decontam dropped", "gen s",
                "verify s", "train s", "eval s"):
        t.add_column(col, justify="right" if col != "round" else "left")
    for row in rows:
        lo, hi = row["accuracy_ci95"]
        acc = _pct(row["accuracy"]) + ("" if row["accuracy"] is None
                                       else f" [{_pct(lo)}, {_pct(hi)}]")
        vy = "-" if row["verified_yield"] is None else \
            f"{row['verified']}/{row['attempts']} ({_pct(row['verified_yield'])})"
        d = row["data"]
        data = "-" if d is None else f"{d['seed']}+{d['generated']} = {d['train']}"
        dec = row["decontamination"]
        dropped = "-" if dec is None else str(sum(
            c["dropped"] for run in ("seed", "generated") for c in dec.get(run, {}).values()))
        tm = row["timing"]
        g = row.get("gain_vs_base")
        gain = "-" if g is None else "not judged" if g["gain"] is None else (
            f"{100 * g['gain']:+.1f} [{100 * g['ci95'][0]:+.1f}, {100 * g['ci95'][1]:+.1f}]")
        pairs = "-" if row.get("pairs") is None else str(row["pairs"])
        m = row.get("reward_margin")
        margin = "-" if m is None else f"{m:+.3f} ({_pct(row.get('reward_accuracy'))})"
        train = tm.get("training_s", 0.0) + tm.get("dpo_s", 0.0) + tm.get("grpo_s", 0.0)
        t.add_row(str(row["round"]), acc, gain, vy, data, pairs, margin, dropped,
                  *(f"{tm[k]:.0f}" if k in tm else "-" for k in ("generation_s",
                                                                   "verification_s")),
                  f"{train:.0f}" if row["round"] else "-",
                  f"{tm['eval_s']:.0f}" if "eval_s" in tm else "-")
    return t


def write_rounds(out: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rounds.json`` and ``rounds.png`` (accuracy with its 95% CI per round)."""
    from verimath.store import atomic_write_json

    atomic_write_json(out / "rounds.json", {"rounds": rows})
    plot_rounds(out / "rounds.png", rows)


def plot_rounds(path: Path, rows: list[dict[str, Any]]) -> None:
    """Accuracy per round with 95% CI error bars (matplotlib Agg); unjudged rounds are absent.

    Rounds with a DPO step are annotated with their pairs and last reward margin.
    """
    import os
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judged = [r for r in rows if r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if judged:
        xs = [r["round"] for r in judged]
        ys = [100 * r["accuracy"] for r in judged]
        err = [[y - 100 * r["accuracy_ci95"][0] for y, r in zip(ys, judged, strict=True)],
               [100 * r["accuracy_ci95"][1] - y for y, r in zip(ys, judged, strict=True)]]
        ax.errorbar(xs, ys, yerr=err, fmt="o-", capsize=4)
        for r, y in zip(judged, ys, strict=True):  # DPO rounds: pairs and reward margin
            if r.get("pairs") is not None:
                m = r.get("reward_margin")
                ax.annotate(f"{r['pairs']} pairs" + ("" if m is None else f"\nmargin {m:+.2f}"),
                            (r["round"], y), textcoords="offset points", xytext=(6, -18),
                            fontsize=7)
    ax.set_xticks([r["round"] for r in rows])
    ax.set_xlabel("round (0 = base model)")
    ax.set_ylabel("accuracy (%), 95% Wilson CI")
    ax.set_title("expert iteration")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def per_problem_accuracy(eval_out: Path) -> dict[str, float | None]:
    """``{problem id: judged accuracy in [0, 1]}`` of an eval folder; None: nothing judged.

    Read from ``records.jsonl`` (final records); a problem whose record is still provisional
    (``retries.jsonl``: an infrastructure failure awaiting a retry) is None too.
    """
    from verimath.store import read_jsonl

    out: dict[str, float | None] = {}
    for _line, rec in read_jsonl(eval_out / "records.jsonl"):
        if isinstance(rec, Exception):
            raise rec
        judged = [a["correct"] for a in rec["attempts"] if a.get("correct") is not None]
        out[str(rec["id"])] = sum(judged) / len(judged) if judged else None
    return out


def paired_gain(base_eval: Path, new_eval: Path, *, n_boot: int = 10000,
                seed: int = 0) -> dict[str, Any]:
    """Accuracy gain of ``new_eval`` over ``base_eval`` with a paired-bootstrap 95% CI.

    Problems are paired by id; the per-problem differences (new - base) are resampled with
    :func:`verimath.reasoning.metrics.bootstrap_mean_ci` (percentile bootstrap, Efron 1979). A
    problem not judged in either run is left out and counted.

    Returns:
        ``{"gain", "ci95": [lo, hi], "problems", "left_out", "only_in_one"}``; ``gain`` None
        (and ``ci95`` [None, None]) when no problem is judged in both.
    """
    from verimath.reasoning.metrics import bootstrap_mean_ci

    a, b = per_problem_accuracy(base_eval), per_problem_accuracy(new_eval)
    common = [k for k in a if k in b]
    diffs = [b[k] - a[k] for k in common if a[k] is not None and b[k] is not None]  # type: ignore[operator]
    res: dict[str, Any] = {"problems": len(diffs), "left_out": len(common) - len(diffs),
                           "only_in_one": len(set(a) ^ set(b))}
    if not diffs:
        return {**res, "gain": None, "ci95": [None, None]}
    lo, hi = bootstrap_mean_ci(diffs, n_boot=n_boot, seed=seed)
    return {**res, "gain": sum(diffs) / len(diffs), "ci95": [lo, hi]}
