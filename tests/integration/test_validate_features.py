"""Feature gate: GX suite on real feature rows, TFDV schema + drift, MLflow logging."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.simulator.model import simulate_day
from tasks import features as ft
from tasks.quality import tfdv_checks
from tasks.quality.gx_runner import GxRunner
from tasks.quality.samples import feature_frame
from tasks.validate import validate_features

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Settings

pytestmark = [
    pytest.mark.integration,
    # TFDV's google-cloud dependencies warn about Python 3.11's end of life on import.
    pytest.mark.filterwarnings("ignore::FutureWarning:google"),
]

ZONE = "DE_LU"
TZ = "Europe/Berlin"
DAY = date(2026, 10, 25)  # 25-hour day: 100 rows


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> GxRunner:
    return GxRunner(tmp_path_factory.mktemp("gx"))


@pytest.fixture(scope="module")
def day_features() -> pd.DataFrame:
    """Feature rows built by tasks.features from simulator inputs."""
    cache: dict[tuple[str, date], pd.DataFrame] = {}

    def get(dataset: str, day: date, *, required: bool = True) -> pd.DataFrame | None:
        if (dataset, day) not in cache:
            cache[(dataset, day)] = simulate_day(ZONE, day, seed=3, tz=TZ, mtu_minutes=15)[dataset]
        return cache[(dataset, day)]

    return ft.build_day(ZONE, DAY, get, tz=TZ, mtu_minutes=15, holidays_=set())


def names(result: object) -> set[str]:
    return {c.name for c in result.failed}  # type: ignore[attr-defined]


def test_good_feature_day_passes_gx_and_tfdv_schema(
    settings: Settings, runner: GxRunner, day_features: pd.DataFrame
) -> None:
    assert len(day_features) == 100
    result = validate_features(ZONE, DAY, settings, runner, frame=day_features)
    assert result.passed, [(c.name, c.observed, c.sample) for c in result.failed]
    # No training statistics yet: drift is skipped with a warning, not silently.
    assert {c.name for c in result.warnings} == {"features.tfdv.drift_reference"}


def test_bad_feature_days_fail_with_named_expectations(
    settings: Settings, runner: GxRunner, day_features: pd.DataFrame
) -> None:
    spiked = day_features.copy()
    spiked.loc[5, "price_lag1"] = 9999.0
    assert names(validate_features(ZONE, DAY, settings, runner, frame=spiked, tfdv=False)) == {
        "features.price_lag1.within_sdac_limits"
    }
    short = day_features.drop(index=[96, 97, 98, 99])  # 25-hour day counted as 24
    assert names(validate_features(ZONE, DAY, settings, runner, frame=short, tfdv=False)) == {
        "features.row_count_per_mtu"
    }
    holey = day_features.copy()
    holey.loc[3, "load_mw_lag7"] = float("nan")
    holey.loc[4, "hour"] = 24
    assert names(validate_features(ZONE, DAY, settings, runner, frame=holey, tfdv=False)) == {
        "features.load_mw_lag7.not_null",
        "features.hour.valid",
    }


@pytest.fixture(scope="module")
def training_stats() -> object:
    """Statistics of 120 days of features through the Beam DirectRunner (the training path)."""
    from tasks.config import Settings

    frame = feature_frame(date(2025, 6, 1), 120, mtu_minutes=15, seed=1)
    return tfdv_checks.compute_training_stats(frame, Settings())


SERVING_DAY = date(2025, 9, 29)  # the day after the training window of ``training_stats``


@pytest.fixture
def serving_day(settings: Settings, training_stats: object) -> pd.DataFrame:
    """Features of SERVING_DAY, with ``training_stats`` saved as the zone's drift reference."""
    tfdv_checks.save_training_stats(training_stats, ZONE, settings)
    serving = feature_frame(date(2025, 6, 1), 122, mtu_minutes=15, seed=1)
    local_day = serving["timestamp_utc"].dt.tz_convert(TZ).dt.date
    return serving[local_day == SERVING_DAY].reset_index(drop=True)


def test_drifted_feature_fails_and_normal_day_passes(
    settings: Settings, runner: GxRunner, serving_day: pd.DataFrame
) -> None:
    day, normal = SERVING_DAY, serving_day
    ok = validate_features(ZONE, day, settings, runner, frame=normal)
    assert ok.passed, [(c.name, c.observed) for c in ok.failed]
    # Load 50 % too high (e.g. another area's series) stays under the capacity bound but drifts.
    drifted = normal.assign(load_mw=normal["load_mw"] * 1.5)
    result = validate_features(ZONE, day, settings, runner, frame=drifted)
    assert names(result) == {"features.tfdv.drift.load_mw"}
    (check,) = result.failed
    assert "Jensen-Shannon" in str(check.observed) or "Jensen-Shannon" in check.why
    report = (
        Path(settings.data_root) / "reports" / "tfdv" / day.isoformat() / f"zone={ZONE}" / "anomalies.pbtxt"
    )
    assert "load_mw" in report.read_text()


def test_price_drift_warns_without_withholding_the_day(
    settings: Settings, runner: GxRunner, serving_day: pd.DataFrame
) -> None:
    """A new price regime is a reason to retrain, not to block the schedule (expectations/severity.json)."""
    prices = [c for c in serving_day.columns if c.startswith("price_lag")]
    dearer = serving_day.assign(**{c: serving_day[c] * 4 + 200 for c in prices})
    result = validate_features(ZONE, SERVING_DAY, settings, runner, frame=dearer)
    assert result.passed, [(c.name, c.observed) for c in result.failed]
    assert "features.tfdv.drift.price_lag1" in {c.name for c in result.warnings}


def test_schema_thresholds_are_the_calibrated_ones() -> None:
    schema = tfdv_checks.load_schema()
    thresholds = {
        f.name: f.drift_comparator.jensen_shannon_divergence.threshold
        for f in schema.feature
        if f.HasField("drift_comparator")
    }
    assert thresholds == pytest.approx(tfdv_checks.DRIFT_THRESHOLDS)


def test_stats_are_logged_to_mlflow(settings: Settings, training_stats: object) -> None:
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run() as run:
        logged = tfdv_checks.log_to_mlflow(
            training_stats, None, run.info.run_id, data_docs="file:///x/index.html"
        )
    assert "tfdv/train_stats.pb" in logged
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "tfdv")}
    assert {"tfdv/train_stats.pb", "tfdv/train_stats.pbtxt", "tfdv/features_schema.pbtxt"} <= artifacts
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["quality.data_docs"] == "file:///x/index.html"
    assert tags["quality.tfdv_schema"] == "expectations/tfdv/features_schema.pbtxt"


def test_beam_runner_and_options_come_from_settings(monkeypatch: pytest.MonkeyPatch, data_root: Path) -> None:
    from tasks.config import get_settings

    monkeypatch.setenv("DAP_TFDV_BEAM_RUNNER", "FlinkRunner")
    monkeypatch.setenv("DAP_TFDV_BEAM_OPTIONS", "--flink_master=flink:8081,--parallelism=4")
    get_settings.cache_clear()
    options = tfdv_checks.beam_options(get_settings()).get_all_options()
    assert options["runner"] == "FlinkRunner"
    assert options["flink_master"] == "flink:8081"
    assert options["parallelism"] == 4


def test_drift_reference_falls_back_to_recent_feature_files(settings: Settings, runner: GxRunner) -> None:
    """Before the first training run, the weeks of features before D are the reference."""
    from tasks.storage import Layout, write_parquet_atomic

    layout = Layout(settings.data_root)
    history = feature_frame(date(2025, 3, 1), 31, mtu_minutes=15, seed=2)
    local_day = history["timestamp_utc"].dt.tz_convert(TZ).dt.date
    for data_day, rows in history.groupby(local_day):
        write_parquet_atomic(layout.features_file(ZONE, data_day), rows)  # type: ignore[arg-type]
    day = date(2025, 3, 31)
    serving = history[local_day == day].reset_index(drop=True)
    layout.features_file(ZONE, day).unlink()
    ok = validate_features(ZONE, day, settings, runner, frame=serving)
    assert ok.passed
    assert not ok.warnings, [c.name for c in ok.warnings]
    assert "features of the 30 days before" in str(ok.suites[-1].checks[-1].observed)
    drifted = serving.assign(load_mw=serving["load_mw"] * 1.4)
    assert names(validate_features(ZONE, day, settings, runner, frame=drifted)) == {
        "features.tfdv.drift.load_mw"
    }


def test_record_training_data_keeps_stats_for_serving_and_logs_them(settings: Settings) -> None:
    import mlflow

    frame = feature_frame(date(2025, 1, 1), 30, mtu_minutes=15, seed=4)
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run() as run:
        tfdv_checks.record_training_data(frame, ZONE, run.info.run_id, settings)
    from tasks.storage import Layout

    layout = Layout(settings.data_root)
    assert tfdv_checks.training_stats_file(layout, ZONE).exists()
    reference, source = tfdv_checks.reference_stats(ZONE, date(2025, 2, 1), settings)
    assert reference is not None
    assert source.startswith("training statistics")
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    assert "tfdv/anomalies.pbtxt" in {a.path for a in client.list_artifacts(run.info.run_id, "tfdv")}
    assert client.get_run(run.info.run_id).data.tags["quality.data_docs"].endswith("local_site/index.html")


def test_missing_tfdv_is_reported_not_fatal(
    settings: Settings, runner: GxRunner, day_features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tfdv() -> None:
        raise ImportError("No module named 'tensorflow_data_validation'")

    monkeypatch.setattr(tfdv_checks, "import_tfdv", no_tfdv)
    result = validate_features(ZONE, DAY, settings, runner, frame=day_features)
    assert result.passed
    assert {c.name for c in result.warnings} == {"features.tfdv.available"}
