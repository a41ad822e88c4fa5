"""Packages of the one import name ``verimath``, and the presets shipped inside the wheel.

The layout's top-level folders ``reasoning/``, ``prover/``, ``datagen/`` and ``rl/`` are the
subpackages ``verimath.reasoning``, ``verimath.prover``, ``verimath.datagen``, ``verimath.rl``
(``package_dir`` mapping): wheels and editable installs both install one top-level name.

``configs/`` stays at the top of the checkout (DESIGN.md layout); ``build_py`` copies it into
the built package so ``verimath eval --config configs/eval/demo.yaml`` works after a plain
``pip install`` too (``verimath.config.resolve_preset``). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SUBPACKAGES = ("reasoning", "prover", "datagen", "rl")


def _packages() -> tuple[list[str], dict[str, str]]:
    """Every package under ``verimath`` and the folder each mapped subpackage lives in."""
    pkgs = find_packages(where=str(HERE), include=["verimath", "verimath.*"])
    for top in SUBPACKAGES:
        pkgs += [f"verimath.{p}" for p in find_packages(where=str(HERE), include=[top, f"{top}.*"])]
    return pkgs, {f"verimath.{top}": top for top in SUBPACKAGES}


class BuildWithConfigs(build_py):
    """``build_py`` plus a copy of ``configs/**.yaml`` to ``<build>/verimath/_configs``."""

    def run(self) -> None:  # noqa: D102
        super().run()
        src = HERE / "configs"
        dst = Path(self.build_lib) / "verimath" / "_configs"
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR, cmdclass={"build_py": BuildWithConfigs})
