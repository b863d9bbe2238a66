"""Shared fixtures: the repository's root (the docs' examples name files relative to
it) and the `vmsim` command, when it has been built, to compare with."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(monkeypatch):
    """Runs the test in the repository's root."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(scope="session")
def vmsim_bin():
    """The `vmsim` command: $VMSIM, else a build in the repository's target folders
    (or $CARGO_TARGET_DIR), else on PATH; skips the test when there is none."""
    candidates = [os.environ.get("VMSIM")]
    for target in [os.environ.get("CARGO_TARGET_DIR"), ROOT / "target"]:
        if target:
            candidates += [Path(target) / "debug" / "vmsim", Path(target) / "release" / "vmsim"]
    candidates.append(shutil.which("vmsim"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    pytest.skip("the vmsim command is not built (set $VMSIM to compare with it)")
