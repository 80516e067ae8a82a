"""Shared fixtures: every test gets its own data root and MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.config import Settings, get_settings

# Quiet TensorFlow's C++ logging in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
EPF_DIR = REPO_ROOT.parent / "shared" / "data" / "epf"


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway data root; Settings read in this test point at it."""
    root = tmp_path / "data"
    monkeypatch.setenv("DAP_DATA_ROOT", str(root))
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DAP_MLFLOW_ARTIFACT_ROOT", (tmp_path / "mlartifacts").as_uri())
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


@pytest.fixture
def settings(data_root: Path) -> Settings:
    return get_settings()
