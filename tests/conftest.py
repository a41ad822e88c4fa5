"""Test-wide setup: offline hub, shared data location, marker handling, sandbox skip rule.

Skip rule (issue 11): a test is skipped only when its component is truly absent. For the
sandbox that means bubblewrap itself is unusable (``bwrap --ro-bind / / true`` fails or bwrap is
not installed); then the suite runs on the rlimits fallback (``VERIMATH_SANDBOX_ALLOW_FALLBACK``)
and bubblewrap-only tests skip. When bubblewrap works, a sandbox that cannot start under it is
our bug and every test that needs it FAILS.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VERIMATH_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config: pytest.Config) -> None:
    from verimath.reasoning.sandbox.config import FALLBACK_ENV
    from verimath.reasoning.sandbox.isolation import bwrap_usable

    if not bwrap_usable()[0]:
        os.environ.setdefault(FALLBACK_ENV, "1")  # no bubblewrap here: the fallback is all


def require_bwrap() -> None:
    """Skip the calling test when bubblewrap itself is unusable on this machine (only then)."""
    from verimath.reasoning.sandbox.isolation import bwrap_usable

    ok, why = bwrap_usable()
    if not ok:
        pytest.skip(f"bubblewrap is unusable on this machine: {why}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (GSM8K, MATH-500, miniF2F, ProofNet JSONL); skips if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("lake") is None:
        skip = pytest.mark.skip(reason="needs a live Lean 4 toolchain (`lake` not on PATH)")
        for item in items:
            if "lean" in item.keywords:
                item.add_marker(skip)
