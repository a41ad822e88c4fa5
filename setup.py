"""Build hook: ship the ``configs/`` presets inside the wheel as ``verimath/_configs``.

``configs/`` stays at the top of the checkout (DESIGN.md layout); ``build_py`` copies it into
the built package so ``verimath eval --config configs/eval/demo.yaml`` works after a plain
``pip install`` too (``verimath.config.resolve_preset``). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithConfigs(build_py):
    """``build_py`` plus a copy of ``configs/**.yaml`` to ``<build>/verimath/_configs``."""

    def run(self) -> None:  # noqa: D102
        super().run()
        src = HERE / "configs"
        dst = Path(self.build_lib) / "verimath" / "_configs"
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildWithConfigs})
