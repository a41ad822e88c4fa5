"""Run manifests: everything needed to reproduce a number (DESIGN.md "provenance")."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_PACKAGES = (
    "verimath", "torch", "transformers", "trl", "peft", "datasets", "math-verify",
    "latex2sympy2_extended", "sympy", "vllm", "lean-interact", "lean-dojo",
)


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names``; None when not installed."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_revision(path: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the verimath checkout (plus ``-dirty``), or None outside git."""
    where = Path(path) if path else Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build_manifest(job: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A JSON-ready manifest for a run.

    Args:
        job: the job name ("eval", "prove", "datagen", ...).
        config: the job's full resolved config as a dict.
        **extra: job-specific provenance (model, sampling, prompt hash, grader version,
            isolation level, Lean toolchain, Mathlib revision, seed...).

    Returns:
        ``{"job", "created_unix", "argv", "python", "platform", "git_revision", "packages",
        "config", **extra}``.
    """
    return {
        "job": job,
        "created_unix": time.time(),
        "argv": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "packages": package_versions(),
        "config": config,
        **extra,
    }
