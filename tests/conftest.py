"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def out_dirs(tmp_path: Path) -> tuple[str, str]:
    """CLI overrides that keep a test's results and reports inside its own tmp_path."""
    return f"run.results_dir={tmp_path / 'results'}", f"run.reports_dir={tmp_path / 'reports'}"
