"""Forecast the delivery day's prices with the zone's champion model.

``python -m tasks.forecast --delivery-date D --zone Z``

Loads ``models:/<name>@champion`` (the pyfunc of tasks.forecasting.served_model, so the
features are flattened by the same code as in training), predicts the
quantiles of every MTU of D from ``features/zone=Z/<D>.parquet``, clips them to
the SDAC price limits and adds the volume forecasts of D: wind and solar (TSO),
the TSO load forecast (``load_tso_mw``), the model's load quantiles
(``load_qNN``, when the champion has a load network) and ``load_mw``, the load
the schedule uses: the model's median where it beat the TSO forecast on its
evaluation window, the TSO forecast otherwise. Before it predicts, the champion
is brought up to D-1 by its definition's daily step (``ensemble.daily``,
:mod:`tasks.forecasting.daily_step`: the DNN fine-tuned on recent days, LEAR
re-fitted with its penalties) from the landed history; nothing is registered. Writes
``forecasts/zone=Z/<D>.parquet`` and ``<D>.json`` (model name, version, run id,
load source).
"""

from __future__ import annotations

import argparse
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, GateClosedError
from tasks.storage import Layout, read_lineage, write_json_atomic, write_parquet_atomic

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def forecast(
    zone: str, day: date, settings: Settings | None = None, *, config_path: Path | None = None
) -> dict[str, Any]:
    """Write the forecast file and sidecar of one zone and delivery day."""
    import mlflow

    from tasks.features import read_features
    from tasks.forecasting.served_model import model_input
    from tasks.registry import CHAMPION, client, load_config, model_name, require_champion, tracking_server

    settings = settings or get_settings()
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    layout = Layout(settings.data_root)
    gate = layout.gate_file(zone, day)
    if gate.exists():
        raise GateClosedError(
            f"zone {zone} day {day.isoformat()} failed a gate ({gate}); no forecast is made"
        )
    config = load_config(config_path)
    name = model_name(zone, config)
    uri = f"models:/{name}@{CHAMPION}"
    with tracking_server(settings):
        version = require_champion(settings, zone, day, config)
        features = read_features(zone, day, settings)
        champion_run = client(settings).get_run(str(version.run_id))
        model = mlflow.pyfunc.load_model(uri)
    inner = model.unwrap_python_model()
    daily = bring_up_to_date(inner, zone, day, settings)
    pred = model.predict(model_input(features))
    load_meta: dict[str, Any] = dict(getattr(inner, "load_meta", None) or {})
    wanted = [f"price_q{round(100 * q)}" for q in settings.quantiles]
    missing = [c for c in wanted if c not in pred.columns]
    if missing:
        raise ConfigError(
            f"champion {name} v{version.version} gives {list(pred.columns)}, settings ask for {wanted}; "
            "retrain with the configured quantiles"
        )
    out, load_source = _output_frame(features, pred, wanted, load_meta, settings)
    path = write_parquet_atomic(layout.forecast_file(zone, day), out)
    sidecar = {
        "zone": zone,
        "delivery_date": day.isoformat(),
        "model_name": name,
        "model_version": int(version.version),
        "model_uri": uri,
        "run_id": version.run_id,
        "quantiles": list(settings.quantiles),
        "rows": len(out),
        "features": str(layout.features_file(zone, day)),
        "load_source": load_source,
        "load_decision": load_meta.get("reason", "champion has no load network"),
        "daily_step": daily,  # what step 5 did before predicting (null: the champion as registered)
        # Processed inputs behind the features (dataset, data day, raw file, revision, sha256).
        "inputs": (read_lineage(layout.features_file(zone, day)) or {}).get("inputs", []),
    }
    write_json_atomic(path.with_suffix(".json"), sidecar)
    return {
        "path": str(path),
        "model_version": int(version.version),
        "model_name": name,
        "run_id": version.run_id,
        "rows": len(out),
        "load_source": load_source,
        # For the stage metrics (tasks.metrics): the champion's age and its hold-out error.
        "model_trained_for": champion_run.data.tags.get("delivery_date"),
        "model_holdout_mae": champion_run.data.metrics.get("mae"),
    }


def bring_up_to_date(inner: Any, zone: str, day: date, settings: Settings) -> dict[str, Any] | None:
    """Step: the champion's daily step (its ``ensemble.daily``) on the landed history before D; None without one."""
    import time

    from tasks.forecasting.daily_step import apply
    from tasks.forecasting.definition import daily_step_of
    from tasks.training_data import history_start, load_window, training_window

    block, fitted_for = getattr(inner, "daily", None), getattr(inner, "fitted_for", None)
    if not block or fitted_for is None:
        return None
    t0 = time.perf_counter()
    fit_day = date.fromisoformat(fitted_for)
    # From the start of the fit's window (the trees' re-fit reads it) or D's, whichever is earlier.
    first, _ = training_window(min(fit_day, day), settings.train_window_days, history_start(zone, settings))
    last = day - timedelta(days=1)
    window = load_window(zone, first, last, settings)
    if not window.days:
        log.warning(
            "zone %s day %s: no landed history before D; the champion forecasts as registered", zone, day
        )
        return {"fitted_for": fitted_for, "skipped": f"no usable day in {first}..{last}"}
    done = apply(
        inner,
        daily_step_of(block),
        days=window.days,
        x=inner.design.matrix(window.frames),
        y=window.y,
        fitted_for=fit_day,
        day=day,
        window_days=settings.train_window_days,
    )
    done["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("zone %s day %s: daily step %s", zone, day, done)
    return done


def _output_frame(
    features: pd.DataFrame,
    pred: pd.DataFrame,
    wanted: list[str],
    load_meta: dict[str, Any],
    settings: Settings,
) -> tuple[pd.DataFrame, str]:
    """The forecast rows: price quantiles (clipped, non-crossing), the volume forecasts, and their source.

    The volume forecast (``load_mw``) is the load network's median where the
    champion's load model beat the TSO forecast (``load_meta["use_model"]``),
    the TSO forecast otherwise (also kept as ``load_tso_mw``).
    """
    import numpy as np
    import pandas as pd

    from tasks.forecasting.metrics import median_index

    out = pd.DataFrame(
        {"timestamp_utc": features["timestamp_utc"], "resolution_minutes": features["resolution_minutes"]}
    )
    values = np.clip(
        pred[wanted].to_numpy(dtype=float), settings.price_floor_eur_mwh, settings.price_cap_eur_mwh
    )
    values = np.maximum.accumulate(values, axis=1)  # non-crossing even after clipping
    for i, column in enumerate(wanted):
        out[column] = values[:, i]
    for column in ("load_mw", "wind_mw", "solar_mw"):
        out[column] = features[column].to_numpy(dtype=float)
    out["load_tso_mw"] = out["load_mw"]
    load_columns = [f"load_q{round(100 * q)}" for q in settings.quantiles]
    load_source = "tso"
    if all(c in pred.columns for c in load_columns):
        loads = np.maximum.accumulate(np.clip(pred[load_columns].to_numpy(dtype=float), 0.0, None), axis=1)
        for i, column in enumerate(load_columns):
            out[column] = loads[:, i]
        if load_meta.get("use_model"):
            median = settings.quantiles[median_index(settings.quantiles)]
            out["load_mw"] = out[f"load_q{round(100 * median)}"]
            load_source = "load_dnn"
    return out, load_source


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    return forecast(args.zone or settings.zones[0], day_arg(args), settings, config_path=args.config)


def parser() -> argparse.ArgumentParser:
    p = base_parser("Forecast the delivery day's price quantiles with the zone's champion.")
    p.add_argument(
        "--config", type=Path, default=None, help="JSON overriding mlruns_config/models.json keys."
    )
    return p


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
