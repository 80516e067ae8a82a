"""notebooks/analysis.ipynb runs top to bottom on a small data root (nbclient, a real kernel).

DAP_NOTEBOOK_DATA_ROOT runs it on another data root (e.g. var/data after ``make demo``)
with its MLflow store instead of the one made here.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"
FIRST = date(2026, 5, 4)


def registered_model(tracking_uri: str) -> None:
    """One registered model with two versions whose runs carry evaluation figures, aliases set."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    client.create_registered_model("day_ahead_price_DE_LU")
    for version, mae in ((1, 9.5), (2, 8.25)):
        with mlflow.start_run(run_name=f"train DE_LU v{version}") as run:
            mlflow.log_metrics({"mae": mae, "rmae": mae / 20, "naive_mae": 20.0, "lear_mae": mae + 0.5})
            mlflow.log_text("model files", "price_model/README.txt")
        client.create_model_version(
            "day_ahead_price_DE_LU", f"{run.info.artifact_uri}/price_model", run_id=run.info.run_id
        )
    client.set_registered_model_alias("day_ahead_price_DE_LU", "champion", "2")
    client.set_registered_model_alias("day_ahead_price_DE_LU", "challenger", "1")


def small_data_root(tmp_path: Path) -> tuple[Path, str]:
    from devtools.sample_schedules import build
    from tasks.config import Settings

    root = tmp_path / "data"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = Settings(data_root=root, zones=("DE_LU",), mlflow_tracking_uri=uri)
    build(settings, FIRST, 2)
    realised = root / "realised" / "zone=DE_LU" / f"{FIRST}.json"
    realised.parent.mkdir(parents=True)
    realised.write_text(
        json.dumps(
            {
                "realised_profit_eur": 812.5,
                "perfect_foresight_profit_eur": 950.0,
                "capture_ratio": 0.855,
                "forecast_mae": 7.1,
                "interval_coverage": 0.79,
            }
        )
    )
    registered_model(uri)
    return root, uri


def test_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    given = os.environ.get("DAP_NOTEBOOK_DATA_ROOT")
    if given:
        root = Path(given)
    else:
        root, uri = small_data_root(tmp_path)
        monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DAP_DATA_ROOT", str(root))
    monkeypatch.setenv("DAP_BACKTEST_DIR", str(tmp_path / "no-backtests"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()
    text = "\n".join(
        str(out.get("text", ""))
        + str(out.get("data", {}).get("text/html", out.get("data", {}).get("text/plain", "")))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
    if given:
        assert images >= 1
        return
    assert "day_ahead_price_DE_LU" in text
    assert "champion" in text
    assert "published epftoolbox" in text  # the benchmarks read from research/RESULTS.md
    assert "1 of 2 zone-days have a realised value" in text
    assert f"no local backtest runs under {tmp_path / 'no-backtests'}" in text
    assert images == 4  # model MAE, backtest rMAE, expected vs realised, last day's schedule
