"""Lint with ruff (config in pyproject.toml); runs under `colcon test` as well as `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_no_problems():
    pytest.importorskip('ruff', reason='ruff is not installed: pip install ruff')
    result = subprocess.run(
        [sys.executable, '-m', 'ruff', 'check', '--no-cache', str(REPO_ROOT)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
