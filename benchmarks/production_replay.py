"""The production price model on real history: accuracy and storage capture of its members.

    PYTHONPATH=. .venv/bin/python benchmarks/production_replay.py --csv ../shared/data/epf/DE.csv \
        [--zone DE_LU] [--first-origin 2016-01-04] [--origins 26] [--every 28] [--keep DIR] \
        [--neighbour ZONE=CSV]

Replays an hourly epftoolbox-layout CSV through the embedded ingestion path
(``DAP_SOURCE=replay``, devtools.bootstrap), then runs ``python -m tasks.train``
for ``--origins`` delivery days ``--every`` days apart, exactly as the daily
DAG does (the window of ``--train-days``, the configured held-out evaluation
days), so the models are the ensemble of ``tasks.forecasting.definition`` that
training registers (the rolling backtest builds the same one). Each model then
forecasts the days it would serve as champion, its origin and the ``--every - 1``
days after it, as the forecast stage serves them: the model's daily step
(``ensemble.daily``, :mod:`tasks.forecasting.daily_step`) brings it up to each
day's eve from the landed history, resumed day after day. ``--every 7`` is the
pipeline's cadence (``train_every_days``); the default 28 trains a quarter as
often and leaves the step more days to catch up. The default origins tile the
epftoolbox test period of DE.csv (2016-01-04 … 2017-12-31; BE.csv:
``--first-origin 2015-01-04``). ``--as-registered`` forecasts with the logged
model alone.

For each run it reports, per member and for the served ensemble: MAE, rMAE
against the weekly naive, and the capture of perfect-foresight profit of the
trading-backtest protocol battery (10 MW / 20 MWh, 90 % round trip, SoC 50 % at
both ends of each day), dispatched on each forecast and settled at the actual
prices. Days are the fixed 24-slot grid of the features (DST days as the models
see them). The training run's own score on its held-out days is printed as
``run rmae``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _run(module: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            env={**env, "DAP_RESULT_FILE": str(result_file)},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            raise SystemExit(f"{module} {' '.join(args)} failed with {proc.returncode}")
        return dict(json.loads(result_file.read_text()))


def _existing_run(day: date) -> dict[str, Any] | None:
    """The candidate run trained for ``day`` in the current tracking store, as tasks.train reports it."""
    import mlflow

    from tasks.registry import load_config

    runs = mlflow.search_runs(
        experiment_names=[load_config()["experiments"]["price_dnn"]],
        filter_string=f"tags.delivery_date = '{day.isoformat()}' and attributes.status = 'FINISHED'",
        output_format="list",
    )
    runs = [r for r in runs if "model_uri" in r.data.tags]
    if not runs:
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "model_uri": run.data.tags["model_uri"]}


def served_forecasts(model: Any, zone: str, fitted_for: date, days: list[date], settings: Any) -> Any:
    """``days`` (from ``fitted_for`` on) forecast one by one, each after the daily step up to its eve.

    What the forecast stage serves with a champion trained for ``fitted_for``: the
    step (``ensemble.daily``) applied in place and resumed day after day, which is
    the forecast stage's chain replayed from the registered weights.
    """
    from tasks.forecasting.daily_step import apply
    from tasks.forecasting.definition import daily_step_of
    from tasks.forecasting.served_model import PriceForecast
    from tasks.training_data import history_start, load_window, training_window

    step = daily_step_of(model.daily)
    first, _ = training_window(fitted_for, settings.train_window_days, history_start(zone, settings))
    history = load_window(zone, first, days[-1], settings, build_missing=False)
    x = model.design.matrix(history.frames)
    parts = []
    for k, day in enumerate(days):
        apply(
            model,
            step,
            days=history.days,
            x=x,
            y=history.y,
            fitted_for=fitted_for,
            day=day,
            window_days=settings.train_window_days,
            resume_from=days[k - 1] + timedelta(days=1) if k else None,
        )
        parts.append(model.forecast_parts(x[[history.days.index(day)]]))
    return PriceForecast(
        np.concatenate([p.quantiles for p in parts]),
        np.concatenate([p.dnn for p in parts]),
        {name: np.concatenate([p.members[name] for p in parts]) for name in parts[0].members},
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--csv", type=Path, required=True, help="Hourly epftoolbox-layout CSV (DE.csv, BE.csv)."
    )
    parser.add_argument("--zone", default="DE_LU")
    parser.add_argument("--timezone", default="Europe/Berlin")
    parser.add_argument("--first-origin", type=date.fromisoformat, default=date(2016, 1, 4))
    parser.add_argument("--origins", type=int, default=26)
    parser.add_argument(
        "--every", type=int, default=28, help="Days between origins: each model serves this many."
    )
    parser.add_argument(
        "--train-days", type=int, default=1092, help="Training window (the settings default)."
    )
    parser.add_argument(
        "--neighbour",
        action="append",
        default=[],
        metavar="ZONE=CSV",
        help="A coupled zone replayed beside --zone from its own CSV; its load and renewable forecasts "
        "join the zone's features (settings.neighbour_zones), e.g. --zone BE --neighbour DE_LU=DE.csv.",
    )
    parser.add_argument(
        "--as-registered",
        action="store_true",
        help="Forecast with the logged model, without its daily step.",
    )
    parser.add_argument("--keep", type=Path, default=None, help="Use (and keep) this directory.")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="Score the runs already in --keep's MLflow store for an origin instead of training again.",
    )
    args = parser.parse_args()

    neighbours: dict[str, str] = {}
    for spec in args.neighbour:
        zone, sep, csv = spec.partition("=")
        if not sep or not zone or not csv or zone == args.zone:
            parser.error(f"--neighbour {spec!r}: expected ZONE=CSV with a zone other than --zone")
        neighbours[zone] = str(Path(csv).resolve())
    base = (args.keep or Path(tempfile.mkdtemp(prefix="dap-replay-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DAP_DATA_ROOT": str(base / "data"),
        "DAP_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "DAP_MLFLOW_ARTIFACT_ROOT": (base / "artifacts").as_uri(),
        "DAP_ZONES": ",".join([args.zone, *neighbours]),
        "DAP_NEIGHBOUR_ZONES": json.dumps({args.zone: list(neighbours)}),
        "DAP_REPLAY_CSVS": json.dumps(neighbours),
        "DAP_MARKET_TIMEZONE": args.timezone,
        "DAP_MTU_MINUTES": "60",
        "DAP_SOURCE": "replay",
        "DAP_REPLAY_CSV": str(args.csv.resolve()),
        "DAP_TRAIN_WINDOW_DAYS": str(args.train_days),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    os.environ.update(env)
    origins = [args.first_origin + timedelta(days=args.every * k) for k in range(args.origins)]
    first = origins[0] - timedelta(days=args.train_days + 8)
    t0 = time.perf_counter()
    last = origins[-1] + timedelta(days=args.every - 1)  # tasks.train for D reads nothing of D
    _run("devtools.bootstrap", ["--first-day", first.isoformat(), "--last-day", last.isoformat()], env)
    print(f"replayed {first}..{last} in {time.perf_counter() - t0:.0f} s", flush=True)
    # Replay has no actual load or weather: no load model; TFDV statistics are not what is measured.
    override = base / "models.json"
    override.write_text(json.dumps({"tfdv_statistics": False, "load_dnn": {"enabled": False}}))

    import mlflow

    from research.backtest_trading import expert_profits
    from tasks.config import get_settings
    from tasks.forecasting.metrics import median_index
    from tasks.registry import load_price_model
    from tasks.training_data import load_window

    settings = get_settings()
    # Names come from the models: ensemble, dnn, each point member, the point members
    # without the DNN (a diagnostic of what the DNN adds) and the weekly naive.
    rows: list[dict[str, Any]] = []
    errors: dict[str, list[np.ndarray]] = {}
    profit: dict[str, float] = {}
    perfect_total = 0.0
    train_seconds = []
    for day in origins:
        mlflow.set_tracking_uri(env["DAP_MLFLOW_TRACKING_URI"])
        res = _existing_run(day) if args.reuse_runs else None
        if res is None:
            t1 = time.perf_counter()
            res = _run(
                "tasks.train",
                ["--delivery-date", day.isoformat(), "--zone", args.zone, "--config", str(override)],
                env,
            )
            train_seconds.append(time.perf_counter() - t1)
        run = mlflow.MlflowClient().get_run(str(res["run_id"]))
        window = load_window(
            args.zone, day, day + timedelta(days=args.every - 1), settings, build_missing=False
        )
        model = load_price_model(str(res["model_uri"]))
        assert model.design is not None
        if args.as_registered or not getattr(model, "daily", None):
            forecast = model.forecast_parts(model.design.matrix(window.frames))
        else:
            forecast = served_forecasts(model, args.zone, day, window.days, settings)
        m = median_index(model.design.quantiles)
        points = {"ensemble": forecast.quantiles[..., m], "dnn": forecast.dnn[..., m], **forecast.members}
        # The registered point's counterpart: the same members with the DNN median if it is left out, without it if in.
        other = list(model.members) if model.dnn_in_point else ["dnn", *model.members]
        if len(other) > 1:
            points["+".join(other)] = np.mean([points[n] for n in other], axis=0)
        points["naive"] = window.naive
        for i, d in enumerate(window.days):
            rows.extend(
                {"date": d.isoformat(), "slot": s, "actual": window.y[i, s]}
                | {n: float(p[i, s]) for n, p in points.items()}
                for s in range(window.y.shape[1])
            )
        # Per-day profit of the protocol battery scheduled on each forecast, and on the actuals.
        days_profit = expert_profits(window.y, np.stack([window.y, *points.values()])).sum(axis=1)
        perfect = float(days_profit[0])
        realised = dict(zip(points, days_profit[1:].tolist(), strict=True))
        for name, point in points.items():
            errors.setdefault(name, []).append(np.abs(window.y - point))
            profit[name] = profit.get(name, 0.0) + realised[name]
        perfect_total += perfect
        print(
            f"{day}: {len(window.days)} days, MAE "
            + " ".join(f"{n} {np.abs(window.y - p).mean():.2f}" for n, p in points.items())
            + f" | capture ensemble {realised['ensemble'] / perfect:.1%} dnn {realised['dnn'] / perfect:.1%}"
            + f" | run rmae {run.data.metrics['rmae']:.3f}"
            + " | weights "
            + " ".join(
                f"{k[7:]} {v:.2f}" for k, v in sorted(run.data.metrics.items()) if k.startswith("weight_")
            ),
            flush=True,
        )
    naive_mae = float(np.concatenate(errors["naive"]).mean())
    n_days = sum(len(e) for e in errors["naive"])
    print(
        f"\n{args.csv.name} as zone {args.zone}: {args.origins} origins from {origins[0]}, "
        f"{n_days} served days, {args.train_days}-day window, "
        + ("logged models alone" if args.as_registered else "each day after the daily step")
        + (f", neighbours {', '.join(neighbours)}" if neighbours else "")
    )
    print(f"{'model':18s} {'MAE':>7s} {'rMAE':>6s} {'capture':>8s}")
    for name, name_errors in errors.items():
        mae = float(np.concatenate(name_errors).mean())
        print(f"{name:18s} {mae:7.3f} {mae / naive_mae:6.3f} {profit[name] / perfect_total:8.1%}")
    if train_seconds:
        print(f"train: mean {np.mean(train_seconds):.0f} s per run (wall)")
    import pandas as pd

    pd.DataFrame(rows).to_csv(base / "forecasts.csv", index=False)
    print(f"per-slot forecasts: {base / 'forecasts.csv'}; data and MLflow store in {base}")


if __name__ == "__main__":
    main()
