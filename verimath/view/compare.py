"""Two runs of one benchmark side by side: each accuracy, the paired difference, the flips.

Problems are paired by id. A problem's accuracy in a run is its judged accuracy (correct /
judged attempts); a problem with no judged attempt in a run ("could not judge") is left out of
the paired difference and counted. The paired difference B - A is the mean of the per-problem
differences with a percentile-bootstrap 95% interval over problems
(:func:`verimath.reasoning.metrics.bootstrap_mean_ci`, Efron 1979), as ``verimath iterate``
reports its gain over the base model.

A problem *flipped* when its accuracy differs between the runs: ``right->wrong`` when it fell,
``wrong->right`` when it rose. With one sample per problem these are exactly the problems whose
single verdict changed; with ``n`` samples the table shows ``correct/judged`` of each run.
"""

from __future__ import annotations

from typing import Any

#: how flipped problems are labelled in the payload (``fl``)
LOST, GAINED = "right->wrong", "wrong->right"


def problem_accuracy(attempts: list[dict[str, Any]]) -> tuple[int, int]:
    """``(correct, judged)`` over compact attempts (``c``: True / False / None = not judged)."""
    judged = [a["c"] for a in attempts if a.get("c") is not None]
    return sum(1 for c in judged if c), len(judged)


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """``{"acc", "ci95"}`` of a loaded eval or prove payload from its summary (None: unknown).

    Eval: ``accuracy`` and its Wilson ``accuracy_ci95``; prove: ``pass@1`` and its interval.
    """
    s = run.get("summary") or {}
    if run["kind"] == "eval":
        return {"acc": s.get("accuracy"), "ci95": s.get("accuracy_ci95")}
    return {"acc": (s.get("pass@k") or {}).get("1"), "ci95": (s.get("pass@k_ci95") or {}).get("1")}


def paired_difference(diffs: list[float], *, n_boot: int = 10000, seed: int = 0
                      ) -> dict[str, Any]:
    """Mean of per-problem differences (B - A) with a percentile-bootstrap 95% CI.

    Args:
        diffs: one difference per problem judged in both runs, each in [-1, 1].
        n_boot: bootstrap resamples.
        seed: bootstrap seed (reproducible).

    Returns:
        ``{"diff", "ci95": [lo, hi], "problems"}``; ``diff`` and the interval are None when
        ``diffs`` is empty.
    """
    if not diffs:
        return {"diff": None, "ci95": [None, None], "problems": 0}
    from verimath.reasoning.metrics import bootstrap_mean_ci

    lo, hi = bootstrap_mean_ci(diffs, n_boot=n_boot, seed=seed)
    return {"diff": sum(diffs) / len(diffs), "ci95": [lo, hi], "problems": len(diffs)}


def compare(a: dict[str, Any], b: dict[str, Any], *, n_boot: int = 10000) -> dict[str, Any]:
    """The comparison payload of two loaded runs (eval or prove payloads of :mod:`.load`).

    Returns:
        ``{"kind": "compare", "sub": "eval" | "prove", "a": run side, "b": run side,
        "paired": paired_difference + {"left_out", "only_a", "only_b"}, "warnings": [...],
        "problems": [{"id", "q", "g", "m", "fl": LOST | GAINED | "", "A": side, "B": side}]}``;
        a run side is ``{"run", "summary", "acc", "ci95"}`` and a problem side
        ``{"c", "j", "n", "pv", "at"?}`` (attempts embedded only for flipped problems, or
        where one run could not judge the problem). Problems are those in both runs, in A's
        order.

    Raises:
        ValueError: the runs are of different kinds (an eval and a prove run).
    """
    if a["kind"] != b["kind"] or a["kind"] not in ("eval", "prove"):
        raise ValueError(f"can compare two eval runs or two prove runs, got {a['kind']} "
                         f"({a['run']['path']}) and {b['kind']} ({b['run']['path']})")
    warnings = []
    for key in ("benchmark", "split"):
        if a["run"].get(key) != b["run"].get(key):
            warnings.append(f"{key} differs: {a['run'].get(key)!r} vs {b['run'].get(key)!r}; "
                            "problems are paired by id")
    by_id = {p["id"]: p for p in b["problems"]}
    diffs: list[float] = []
    rows, left_out = [], 0
    for pa in a["problems"]:
        pb = by_id.get(pa["id"])
        if pb is None:
            continue
        (ca, ja), (cb, jb) = problem_accuracy(pa["at"]), problem_accuracy(pb["at"])
        flip = ""
        if ja and jb:
            d = cb / jb - ca / ja
            diffs.append(d)
            flip = LOST if d < 0 else GAINED if d > 0 else ""
        else:
            left_out += 1
        show = bool(flip) or not (ja and jb)
        rows.append({"id": pa["id"], "q": pa.get("q"), "g": pa.get("g"), "m": pa.get("m"),
                     "fl": flip,
                     "A": _side(pa, ca, ja, show), "B": _side(pb, cb, jb, show)})
    ids_a = {p["id"] for p in a["problems"]}
    paired = {**paired_difference(diffs, n_boot=n_boot), "left_out": left_out,
              "only_a": len(ids_a - by_id.keys()), "only_b": len(by_id.keys() - ids_a)}
    if not rows:
        warnings.append("the two runs share no problem id")
    return {"kind": "compare", "sub": a["kind"], "a": _run_side(a), "b": _run_side(b),
            "paired": paired, "warnings": warnings, "problems": rows}


def _run_side(run: dict[str, Any]) -> dict[str, Any]:
    return {"run": run["run"], "summary": run.get("summary"), **headline(run)}


def _side(p: dict[str, Any], c: int, j: int, with_attempts: bool) -> dict[str, Any]:
    side: dict[str, Any] = {"c": c, "j": j, "n": len(p["at"]), "pv": p.get("pv", False)}
    if with_attempts:
        side["at"] = p["at"]
    return side
