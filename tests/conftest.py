"""Shared fixtures: every test gets its own data root and MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.config import Settings, get_settings
from tasks.forecasting import design

# Quiet TensorFlow's C++ logging in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
EPF_DIR = REPO_ROOT.parent / "shared" / "data" / "epf"


#: Every test belongs to one tier (pyproject.toml registers them); `slow` is orthogonal.
TIERS = ("unit", "integration", "e2e")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test without a tier marker fails, so ``-m unit`` / ``make test-fast`` select what they say."""
    if not any(item.get_closest_marker(tier) for tier in TIERS):
        pytest.fail(
            f"{item.nodeid} has no tier marker: add pytestmark = pytest.mark.<{'|'.join(TIERS)}> "
            "to its module (and pytest.mark.slow if it takes more than a few seconds)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def de() -> design.DayData:
    """The DE epftoolbox excerpt (tests/fixtures/epf, 120 days to 2017-12-31); copy before changing it."""
    return design.load_csv(FIXTURES / "epf" / "DE_excerpt.csv")


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


@pytest.fixture(autouse=True)
def _isolate_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow keeps the tracking URI, active experiment and run in process globals
    (and MLFLOW_EXPERIMENT_ID in the environment); reset them so each test's own
    throwaway store is the only one it sees."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    import sys

    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking import fluent

        while mlflow.active_run() is not None:
            mlflow.end_run()
        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets to the default
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
