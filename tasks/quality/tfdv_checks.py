"""TensorFlow Data Validation: training statistics, curated schema, serving checks.

The training stage calls :func:`compute_training_stats` (an Apache Beam
pipeline: DirectRunner locally, Flink/Spark/Dataflow via
``DAP_TFDV_BEAM_RUNNER`` and ``DAP_TFDV_BEAM_OPTIONS``), then
:func:`save_training_stats` and :func:`log_to_mlflow`. ``tasks.validate
--dataset features`` calls :func:`serving_outcome`: the day's features are
checked against the curated schema in ``expectations/tfdv/features_schema.pbtxt``
(types, presence, value ranges) and, for the key features, against the
training statistics with Jensen–Shannon drift comparators. TFDV takes ~12 s
to import, so it is imported inside functions only.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH
from tasks.quality.gx_runner import CheckOutcome, SuiteOutcome
from tasks.quality.specs import EXPECTATIONS_DIR, SeverityPolicy, zone_limits
from tasks.storage import Layout, write_bytes_atomic

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Settings

log = logging.getLogger(__name__)

SCHEMA_PATH = EXPECTATIONS_DIR / "tfdv" / "features_schema.pbtxt"
#: Key features with a Jensen–Shannon drift comparator (serving day vs training
#: statistics). One day against years of history is a narrow slice of the
#: distribution, so a normal day's JS is already high. Load was calibrated on
#: real days (benchmarks/validation_benchmark.py --features-root, 3-year
#: statistics): the largest normal JS was 0.72 (DE 2017) and 0.82 (BE 2016, a
#: cold week in January), so 0.9 quarantines no real day while doubled or halved
#: load is caught on 75-94 % of days (capacity limits catch most of the rest);
#: 20-30 % level errors are out of a single day's reach (docs/validation.md).
#: Solar (0.75) is calibrated on the simulator only (the replayed data has no
#: solar). Price drift warns (expectations/severity.json): a new price regime is
#: a reason to retrain, not to withhold the schedule. Temperature and wind get no
#: comparator: their normal single-day JS reaches 0.9-1.0 (weather regimes), so
#: the GX plausibility and capacity checks guard them.
DRIFT_THRESHOLDS: dict[str, float] = {
    "load_mw": 0.9,
    "solar_mw": 0.75,
    "price_lag1": 0.95,
}
#: How many days before D the fallback reference (no saved training stats) spans.
REFERENCE_DAYS = 56
MIN_REFERENCE_DAYS = 14


def import_tfdv() -> Any:
    """``tensorflow_data_validation`` without google.api_core's Python-EOL FutureWarning."""
    import warnings

    with warnings.catch_warnings():
        # google.api_core warns about Python 3.11's end of life at import time.
        warnings.simplefilter("ignore", FutureWarning)
        import tensorflow_data_validation as tfdv
    return tfdv


def to_tfdv_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns only, default index (TFDV would add a non-default index as a feature).

    A neighbouring zone's columns are left out: the curated schema is one zone's,
    and those values are the neighbour's own features, checked by its gate.
    """
    import pandas as pd

    from tasks.features import is_neighbour_column

    frame = features.reset_index(drop=True)
    keep = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
        and not is_neighbour_column(c)
    ]
    out = frame[keep].copy()
    for column in keep:
        if pd.api.types.is_integer_dtype(out[column]):
            out[column] = out[column].astype("int64")
        else:
            out[column] = out[column].astype("float64")
    return out


def stats_options(schema: Any = None) -> Any:
    tfdv = import_tfdv()
    return tfdv.StatsOptions(schema=schema, num_histogram_buckets=20, num_quantiles_histogram_buckets=10)


def beam_runner(settings: Settings) -> Any:
    """The runner object for a local run, else None (``--runner`` in the options decides).

    Beam 2.72's ``DirectRunner`` first tries the Prism runner, which downloads a
    binary from GitHub at run time; locally we run the in-process FnApiRunner
    (what DirectRunner falls back to) so nothing is fetched.
    """
    if settings.tfdv_beam_runner in ("DirectRunner", "FnApiRunner"):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return None


def beam_options(settings: Settings) -> Any:
    """Beam pipeline options from settings: the runner and its extra flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = [f"--runner={settings.tfdv_beam_runner}", *settings.tfdv_beam_options]
    if settings.tfdv_beam_runner == "DirectRunner" and not any(
        f.startswith("--direct_num_workers") for f in settings.tfdv_beam_options
    ):
        flags.append("--direct_num_workers=1")
    return PipelineOptions(flags)


def to_record_batch(frame: pd.DataFrame) -> Any:
    """Arrow batch with list-typed columns, the layout TFDV's generators read."""
    import pyarrow as pa
    from tfx_bsl.arrow import table_util

    return table_util.CanonicalizeRecordBatch(pa.RecordBatch.from_pandas(frame, preserve_index=False))


def _record_batches(frame: pd.DataFrame, chunk: int = 20000) -> list[Any]:
    return [to_record_batch(frame.iloc[i : i + chunk]) for i in range(0, len(frame), chunk)]


def compute_training_stats(
    features: pd.DataFrame, settings: Settings, *, output_dir: Path | None = None
) -> Any:
    """Statistics of the training features through a Beam pipeline (runner from settings).

    ``output_dir`` must be storage the runner's workers can write (e.g. gs://
    for Dataflow); by default a local temp dir, which suits the DirectRunner.
    """
    import apache_beam as beam

    tfdv = import_tfdv()
    frame = to_tfdv_frame(features)
    with tempfile.TemporaryDirectory(prefix="tfdv-stats-") as tmp:
        out = str((output_dir or Path(tmp)) / "train_stats.pb")
        with beam.Pipeline(runner=beam_runner(settings), options=beam_options(settings)) as pipeline:
            _ = (
                pipeline
                | "Batches" >> beam.Create(_record_batches(frame), reshuffle=False)
                | "Stats" >> tfdv.GenerateStatistics(stats_options())
                | "Write" >> tfdv.WriteStatisticsToBinaryFile(out)
            )
        return tfdv.load_stats_binary(out)


def compute_training_stats_from_parquet(file_pattern: str, settings: Settings, output_dir: str) -> Any:
    """The distributed path: workers read the feature Parquet files themselves.

    Use for data that outgrows one machine (``file_pattern`` e.g.
    ``gs://bucket/features/zone=DE_LU/*.parquet``); nothing passes through the driver.
    """
    import apache_beam as beam

    tfdv = import_tfdv()

    def to_batch(table: Any) -> Any:
        return to_record_batch(to_tfdv_frame(table.to_pandas()))

    out = f"{output_dir.rstrip('/')}/train_stats.pb"
    with beam.Pipeline(runner=beam_runner(settings), options=beam_options(settings)) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromParquetBatched(file_pattern)
            | "ToRecordBatch" >> beam.Map(to_batch)
            | "Stats" >> tfdv.GenerateStatistics(stats_options())
            | "Write" >> tfdv.WriteStatisticsToBinaryFile(out)
        )
    return tfdv.load_stats_binary(out)


def local_stats(features: pd.DataFrame) -> Any:
    """In-process statistics (one day of serving features: no pipeline needed)."""
    tfdv = import_tfdv()
    return tfdv.generate_statistics_from_dataframe(to_tfdv_frame(features), stats_options(), n_jobs=1)


def load_schema(path: Path = SCHEMA_PATH) -> Any:
    return import_tfdv().load_schema_text(str(path))


def curated_schema(stats: Any, zone: str = "DE_LU", settings: Settings | None = None) -> Any:
    """Infer a schema from statistics, then curate it (how features_schema.pbtxt is made).

    Curation: every feature required in every row, float domains set to the
    physical limits (not the observed min/max, which would flag every new
    record), integer calendar domains fixed, Jensen–Shannon drift comparators
    on the key features.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    from tasks import features as ft

    tfdv = import_tfdv()
    schema = tfdv.infer_schema(stats, infer_feature_shape=True)
    limits = zone_limits(zone)
    floor = settings.price_floor_eur_mwh if settings else SDAC_PRICE_FLOOR_EUR_MWH
    cap = settings.price_cap_eur_mwh if settings else SDAC_PRICE_CAP_EUR_MWH
    bounds: dict[str, tuple[float, float]] = dict.fromkeys(ft.PRICE_LAG_COLUMNS, (floor, cap))
    for base, key in (("load_mw", "load_max_mw"), ("wind_mw", "wind_max_mw"), ("solar_mw", "solar_max_mw")):
        for column in (base, *(f"{base}_lag{k}" for k in ft.EXO_LAGS)):
            bounds[column] = (0.0, limits[key])
    bounds["temperature_c"] = (limits["temperature_min_c"], limits["temperature_max_c"])
    bounds["wind_speed_ms"] = (0.0, limits["wind_speed_max_ms"])
    bounds["ghi_w_m2"] = (0.0, limits["ghi_max_w_m2"])
    int_bounds = {
        "resolution_minutes": (15, 60),
        "slot": (0, 95),
        "hour": (0, 23),
        "minute": (0, 45),
        "weekday": (0, 6),
        "month": (1, 12),
        "is_holiday": (0, 1),
    }
    for feature in schema.feature:
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        if feature.name in bounds:
            lo, hi = bounds[feature.name]
            feature.ClearField("domain_info")
            feature.float_domain.min = lo
            feature.float_domain.max = hi
        elif feature.name in int_bounds:
            lo_i, hi_i = int_bounds[feature.name]
            feature.ClearField("domain_info")
            feature.int_domain.min = lo_i
            feature.int_domain.max = hi_i
        if feature.name in ft.WEATHER_COLUMNS:
            feature.presence.min_fraction = 0.0  # weather is optional for the models
            feature.presence.min_count = 0
        if feature.name in DRIFT_THRESHOLDS:
            feature.drift_comparator.jensen_shannon_divergence.threshold = DRIFT_THRESHOLDS[feature.name]
    assert isinstance(schema, schema_pb2.Schema)
    return schema


def write_schema(schema: Any, path: Path = SCHEMA_PATH) -> Path:
    from google.protobuf import text_format

    header = (
        "# Curated TFDV schema of the feature table (tasks/features.py).\n"
        "# Generated by tasks.quality.tfdv_checks.curated_schema from simulator-shaped statistics,\n"
        "# then curated: physical float domains, fixed calendar domains, JS drift comparators.\n"
        "# Regenerate: python -m tasks.quality.tfdv_checks --write-schema\n"
    )
    return write_bytes_atomic(path, (header + text_format.MessageToString(schema)).encode())


def validate_serving(features: pd.DataFrame, schema: Any, training_stats: Any | None) -> Any:
    """Anomalies of one day's serving features: schema, then drift against training stats."""
    tfdv = import_tfdv()
    serving = local_stats(features)
    if training_stats is None:
        return tfdv.validate_statistics(serving, schema)
    return tfdv.validate_statistics(serving, schema, previous_statistics=training_stats)


def anomaly_checks(anomalies: Any, policy: SeverityPolicy) -> list[CheckOutcome]:
    """One check per anomalous feature: ``features.tfdv.drift.<f>`` or ``features.tfdv.anomaly.<f>``."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    def is_drift(reason: Any) -> bool:
        kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
        return "DRIFT" in kind or "COMPARATOR" in kind

    checks: list[CheckOutcome] = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = list(info.reason)
        drift = [r for r in reasons if is_drift(r)]
        other = [r for r in reasons if not is_drift(r)]
        for kind, items in (("drift", drift), ("anomaly", other)):
            if not items:
                continue
            name = f"features.tfdv.{kind}.{feature}"
            checks.append(
                CheckOutcome(
                    name=name,
                    expectation_type=f"tfdv_{kind}",
                    severity=policy(name),
                    success=False,
                    observed="; ".join(r.description or r.short_description for r in items),
                    why=info.short_description or info.description,
                )
            )
    return checks


def training_stats_file(layout: Layout, zone: str) -> Path:
    """Statistics of the latest training run of a zone (written by the training stage)."""
    return layout.root / "reports" / "tfdv" / f"zone={zone}" / "training_stats.pb"


def save_training_stats(stats: Any, zone: str, settings: Settings) -> Path:
    """Keep the training statistics where serving validation finds them."""
    return write_bytes_atomic(
        training_stats_file(Layout(settings.data_root), zone), stats.SerializeToString()
    )


def _read_stats(path: Path) -> Any:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(path.read_bytes())
    return stats


def reference_stats(zone: str, day: date, settings: Settings) -> tuple[Any | None, str]:
    """Training statistics, else statistics of the feature files of the weeks before ``day``."""
    import pandas as pd

    layout = Layout(settings.data_root)
    saved = training_stats_file(layout, zone)
    if saved.exists():
        return _read_stats(saved), f"training statistics {saved}"
    frames = []
    for back in range(1, REFERENCE_DAYS + 1):
        path = layout.features_file(zone, day - timedelta(days=back))
        if path.exists():
            frames.append(pd.read_parquet(path))
    if len(frames) < MIN_REFERENCE_DAYS:
        return None, f"no training statistics and only {len(frames)} earlier feature days"
    return local_stats(pd.concat(frames, ignore_index=True)), f"features of the {len(frames)} days before"


def serving_outcome(
    features: pd.DataFrame, zone: str, day: date, settings: Settings, policy: SeverityPolicy
) -> SuiteOutcome:
    """TFDV checks of one day's features as a suite outcome of the features gate."""
    schema = load_schema()
    reference, source = reference_stats(zone, day, settings)
    anomalies = validate_serving(features, schema, reference)
    checks = anomaly_checks(anomalies, policy)
    if reference is None:
        checks.append(
            CheckOutcome(
                name="features.tfdv.drift_reference",
                expectation_type="tfdv_drift",
                severity="warn",
                success=False,
                observed=source,
                why="Drift is checked once training statistics (or 14 days of features) exist.",
            )
        )
    checks.append(
        CheckOutcome(
            name="features.tfdv.schema",
            expectation_type="tfdv_schema",
            severity=policy("features.tfdv.schema"),
            success=True,
            observed=f"schema {SCHEMA_PATH.name}; drift reference: {source}",
        )
    )
    layout = Layout(settings.data_root)
    out_dir = layout.reports_dir("tfdv", day) / f"zone={zone}"
    from google.protobuf import text_format

    write_bytes_atomic(out_dir / "anomalies.pbtxt", text_format.MessageToString(anomalies).encode())
    return SuiteOutcome(
        suite="features.tfdv",
        data_day=day.isoformat(),
        checks=checks,
        result_path=str(out_dir),
        rows=len(features),
    )


def log_to_mlflow(stats: Any, anomalies: Any | None, run_id: str, *, data_docs: str = "") -> list[str]:
    """Attach statistics (binary + text) and anomalies to an MLflow run under ``tfdv/``.

    ``data_docs`` (the GX Data Docs index of the training data's validations)
    is set as the run tag ``quality.data_docs`` so the run links to the reports.
    """
    import mlflow
    from google.protobuf import text_format

    with tempfile.TemporaryDirectory(prefix="tfdv-mlflow-") as tmp:
        folder = Path(tmp)
        (folder / "train_stats.pb").write_bytes(stats.SerializeToString())
        (folder / "train_stats.pbtxt").write_text(text_format.MessageToString(stats))
        (folder / "features_schema.pbtxt").write_text(SCHEMA_PATH.read_text())
        if anomalies is not None:
            (folder / "anomalies.pbtxt").write_text(text_format.MessageToString(anomalies))
        client = mlflow.MlflowClient()
        client.log_artifacts(run_id, str(folder), artifact_path="tfdv")
        client.set_tag(run_id, "quality.tfdv_schema", str(SCHEMA_PATH.relative_to(EXPECTATIONS_DIR.parent)))
        if data_docs:
            client.set_tag(run_id, "quality.data_docs", data_docs)
        names = sorted(p.name for p in folder.iterdir())
    return [f"tfdv/{n}" for n in names]


def data_docs_index(settings: Settings) -> str:
    """URL of the GX Data Docs site under the data root (where the gate reports are)."""
    index = Layout(settings.data_root).reports_dir("gx") / "gx" / "uncommitted" / "data_docs" / "local_site"
    return (index / "index.html").resolve().as_uri()


def record_training_data(features: pd.DataFrame, zone: str, run_id: str, settings: Settings) -> Any:
    """What the training stage calls once per fit: statistics via Beam, validated against the
    curated schema, kept for serving checks and logged (with a Data Docs link) on the run."""
    stats = compute_training_stats(features, settings)
    anomalies = import_tfdv().validate_statistics(stats, load_schema())
    save_training_stats(stats, zone, settings)
    log_to_mlflow(stats, anomalies, run_id, data_docs=data_docs_index(settings))
    return stats


def _main() -> None:
    """Regenerate the curated schema from simulator-shaped statistics."""
    import argparse

    from tasks.config import get_settings
    from tasks.quality.samples import feature_frame

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument(
        "--write-schema", action="store_true", help="(Re)write expectations/tfdv/features_schema.pbtxt"
    )
    args = parser.parse_args()
    if args.write_schema:
        settings = get_settings()
        stats = compute_training_stats(feature_frame(date(2023, 1, 1), 730), settings)
        print(write_schema(curated_schema(stats, settings.zones[0], settings)))


if __name__ == "__main__":
    _main()
