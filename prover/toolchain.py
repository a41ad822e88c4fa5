"""Finding Lean: ``lake`` / ``lean`` on PATH, a Lean project, its toolchain and Mathlib revision.

Used by ``verimath doctor`` (what is installed, what is missing, how to fix it) and by the
prover's preflight, so that a run without Lean fails in a second with a clear message instead
of a traceback halfway through a benchmark.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from verimath.prover.types import LeanUnavailable, LeanVersion

#: Environment variable naming the Lean project (with Mathlib) used for checking.
PROJECT_ENV = "VERIMATH_LEAN_PROJECT"
ELAN_INSTALL = ("curl -sSf https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh"
                " | sh -s -- -y --default-toolchain none && source ~/.elan/env")
PROJECT_SETUP = ("lake new verimath_lean math && cd verimath_lean && lake exe cache get && "
                 "lake build && export VERIMATH_LEAN_PROJECT=$PWD")
DOCTOR_HINT = "run `verimath doctor` to see what is missing and the command that installs it"


@dataclass(frozen=True, slots=True)
class LeanProject:
    """A Lean project directory and what it pins.

    Attributes:
        path: the project root (has ``lean-toolchain``).
        toolchain: contents of ``lean-toolchain`` (e.g. ``leanprover/lean4:v4.9.0``).
        mathlib_rev: ``rev`` of the ``mathlib`` package in ``lake-manifest.json`` (the git
            HEAD when the project *is* Mathlib); None when the project has no Mathlib.
        built: True when ``.lake/build`` exists (``lake build`` has run).
    """

    path: Path
    toolchain: str | None
    mathlib_rev: str | None
    built: bool

    @property
    def version(self) -> LeanVersion:
        """``LeanVersion(toolchain, mathlib_rev)`` recorded with verdicts."""
        return LeanVersion(self.toolchain, self.mathlib_rev)


def _git_head(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def read_project(path: str | os.PathLike[str]) -> LeanProject:
    """Read toolchain and Mathlib revision of the Lean project at ``path``.

    Raises:
        LeanUnavailable: ``path`` is not a folder with a ``lean-toolchain`` file.
    """
    p = Path(path).expanduser().resolve()
    tc = p / "lean-toolchain"
    if not tc.is_file():
        raise LeanUnavailable(f"{p} is not a Lean project (no lean-toolchain file); {DOCTOR_HINT}")
    toolchain = tc.read_text(encoding="utf-8").strip() or None
    mathlib_rev: str | None = None
    manifest = p / "lake-manifest.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            name = str(data.get("name", "")).lower()
            for pkg in data.get("packages", []):
                if str(pkg.get("name", "")).lower() == "mathlib":
                    mathlib_rev = pkg.get("rev")
            if mathlib_rev is None and name == "mathlib":
                mathlib_rev = _git_head(p)
        except (OSError, ValueError):
            mathlib_rev = None
    return LeanProject(p, toolchain, mathlib_rev, (p / ".lake" / "build").is_dir())


def find_project(explicit: str | os.PathLike[str] | None = None) -> LeanProject | None:
    """The project named by ``explicit`` or ``$VERIMATH_LEAN_PROJECT``; None if neither is set.

    Raises:
        LeanUnavailable: a project was named but is not a Lean project.
    """
    where = explicit or os.environ.get(PROJECT_ENV)
    return read_project(where) if where else None


def tool_version(exe: str) -> str | None:
    """First line of ``<exe> --version``; None when ``exe`` is not on PATH or fails."""
    path = shutil.which(exe)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if out.returncode == 0 and text else None


def require_lean(project_dir: str | os.PathLike[str] | None = None, *,
                 lake_path: str = "lake") -> LeanProject:
    """Preflight: ``lake`` on PATH and a Lean project with Mathlib, or a clear error.

    Args:
        project_dir: the Lean project; None reads ``$VERIMATH_LEAN_PROJECT``.
        lake_path: the ``lake`` executable.

    Raises:
        LeanUnavailable: what is missing, and ``verimath doctor`` as the way to find the fix.
    """
    if shutil.which(lake_path) is None:
        raise LeanUnavailable(
            f"Lean is not installed: `{lake_path}` is not on PATH, so no proof can be checked "
            f"and nothing was scored; {DOCTOR_HINT}")
    project = find_project(project_dir)
    if project is None:
        raise LeanUnavailable(
            f"no Lean project with Mathlib configured (pass --lean-project DIR or set "
            f"${PROJECT_ENV}); {DOCTOR_HINT}")
    if project.mathlib_rev is None:
        raise LeanUnavailable(f"{project.path} does not depend on Mathlib; {DOCTOR_HINT}")
    return project


def lean_dojo_cache_dir() -> Path:
    """LeanDojo's cache of traced repos (``$CACHE_DIR`` or ``~/.cache/lean_dojo``).

    Computed without importing ``lean_dojo`` (its import runs ``git`` and sets up logging).
    """
    env = os.environ.get("CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "lean_dojo").absolute()


def lean_interact_cache_dir() -> Path | None:
    """``lean_interact``'s REPL cache folder (inside the package), without importing it."""
    spec = importlib.util.find_spec("lean_interact")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "cache"
