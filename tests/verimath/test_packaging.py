"""The wheel ships the presets, states torch as a range and keeps lean-dojo optional."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEEP = ("pyproject.toml", "setup.py", "README.md", "configs", "verimath", "reasoning", "prover",
        "datagen", "rl")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in KEEP:  # build from a copy: an in-tree build would leave build/ in the checkout
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    out = tmp_path_factory.mktemp("whl")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(src), "-w", str(out)], check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("verimath-*.whl")
    return whl


def test_wheel_ships_every_preset_and_declares_the_dependencies(wheel) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml")}
    assert presets and {f"verimath/_configs/{p}" for p in presets} <= names
    assert {"verimath/view/assets/report.js", "verimath/view/assets/report.css"} <= names
    meta = next(n for n in names if n.endswith("METADATA"))
    reqs = [ln for ln in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
            if ln.startswith("Requires-Dist:")]
    torch = [r for r in reqs if r.split()[1].startswith("torch")]
    assert torch and "==" not in torch[0] and "<3" in torch[0]
    dojo = [r for r in reqs if "lean-dojo" in r]
    assert dojo and all('extra == "lean"' in r for r in dojo)


def test_installed_wheel_resolves_presets_outside_a_checkout(wheel, tmp_path) -> None:
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)  # what `pip install` puts in site-packages
    code = ("from verimath.config import resolve_preset, packaged_configs\n"
            "p = resolve_preset('configs/eval/demo.yaml')\n"
            "print(packaged_configs()); print(p)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": str(target), "PATH": ""})
    assert res.returncode == 0, res.stderr
    shipped, resolved = res.stdout.split()
    assert shipped == str(target / "verimath" / "_configs")
    assert resolved == str(target / "verimath" / "_configs" / "eval" / "demo.yaml")


def test_sources_import_one_top_level_name() -> None:
    """Every import of our subpackages goes through ``verimath.`` (issue 19).

    From the checkout, ``import reasoning`` would still work (the folder is on the path) and load a
    second copy of the modules under another name; an installed wheel has no such name.
    """
    import ast

    ours = {"reasoning", "prover", "datagen", "rl"}
    bad = []
    for folder in ("verimath", *sorted(ours), "tests", "benchmarks", "examples"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                bad += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names
                        if n.split(".")[0] in ours]
    assert not bad, "import verimath.<package>, not the folder name:\n" + "\n".join(bad)
