"""Score the challenger and the current champion on the same evaluation window.

``python -m tasks.evaluate --delivery-date D --zone Z --run-id R``

The window is the challenger's held-out evaluation window (``window.json`` of
run R): days neither model was fitted on (see tasks.train). Both models read
the same feature files and targets; the figures are logged on run R as
``eval_challenger_*`` / ``eval_champion_*`` with the champion's version as a
tag, which tasks.register uses for the promotion decision. ``--run-id none``
(training was not due) is a no-op.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from pathlib import Path
from typing import Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, IncompatibleModelError, MissingInputError, ModelNotFoundError

log = logging.getLogger(__name__)

NO_RUN = ("", "none", "None", "null")


def _get_run(settings: Settings, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    from tasks.registry import client, connection_failure, unavailable

    try:
        return client(settings).get_run(run_id)
    except MlflowException as exc:
        if connection_failure(exc):
            raise unavailable(settings, exc) from exc
        raise ModelNotFoundError(
            f"run {run_id} is not in {settings.tracking_uri}; pass the run_id that tasks.train returned"
        ) from exc


def evaluate(
    zone: str,
    day: date,
    run_id: str | None,
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
) -> dict[str, Any]:
    """Evaluate run ``run_id`` and the zone's champion on the run's evaluation window."""
    from tasks.registry import load_config, tracking_server

    settings = settings or get_settings()
    if not run_id or run_id in NO_RUN:
        return {"run_id": None, "challenger_mae": None, "champion_mae": None, "skipped": True}
    with tracking_server(settings):
        return _evaluate_run(zone, day, run_id, settings, load_config(config_path))


def _evaluate_run(
    zone: str, day: date, run_id: str, settings: Settings, config: dict[str, Any]
) -> dict[str, Any]:
    import mlflow

    from tasks.forecasting.metrics import score
    from tasks.registry import (
        MODEL_ARTIFACT,
        WINDOW_ARTIFACT,
        champion_version,
        client,
        load_price_model,
        model_name,
    )
    from tasks.training_data import load_window

    run = _get_run(settings, run_id)
    if run.data.tags.get("zone") != zone:
        raise ConfigError(f"run {run_id} was trained for zone {run.data.tags.get('zone')!r}, not {zone!r}")
    window = mlflow.artifacts.load_dict(f"runs:/{run_id}/{WINDOW_ARTIFACT}")
    eval_days = [date.fromisoformat(d) for d in window["evaluation_days"]]
    data = load_window(zone, eval_days[0], eval_days[-1], settings, build_missing=False)
    keep = [i for i, d in enumerate(data.days) if d in set(eval_days)]
    if len(keep) != len(eval_days):
        missing = sorted(set(eval_days) - set(data.days))
        raise MissingInputError(f"evaluation days {missing} of run {run_id} are no longer readable")
    frames = [data.frames[i] for i in keep]
    y, naive = data.y[keep], data.naive[keep]

    challenger = load_price_model(run.data.tags.get("model_uri") or f"runs:/{run_id}/{MODEL_ARTIFACT}")
    assert challenger.design is not None
    figures: dict[str, float] = {}
    ch = score(y, challenger.forecast_days(frames), naive, challenger.design.quantiles)
    figures.update({f"eval_challenger_{k}": v for k, v in ch.items()})
    champion = champion_version(settings, zone, config)
    champion_mae: float | None = None
    champion_tag = "none"
    mc = client(settings)
    if champion is not None and champion.run_id != run_id:
        champion_tag = str(champion.version)
        try:
            model = load_price_model(f"models:/{model_name(zone, config)}/{champion.version}")
        except IncompatibleModelError as exc:
            # A champion that cannot be loaded cannot forecast either: the challenger meets no champion.
            log.warning("zone %s: champion unusable, evaluated as absent: %s", zone, exc)
            mc.set_tag(run_id, "eval_champion_incompatible", str(exc))
        else:
            assert model.design is not None
            cp = score(y, model.forecast_days(frames), naive, model.design.quantiles)
            figures.update({f"eval_champion_{k}": v for k, v in cp.items()})
            champion_mae = cp["mae"]
    elif champion is not None:
        champion_tag = f"self:{champion.version}"
    for key, value in figures.items():
        mc.log_metric(run_id, key, value)
    mc.set_tag(run_id, "eval_champion_version", champion_tag)
    mc.set_tag(run_id, "eval_window", f"{eval_days[0]}..{eval_days[-1]}")
    mc.set_tag(run_id, "evaluated_for", day.isoformat())
    log.info("zone %s: challenger MAE %.3f, champion MAE %s", zone, ch["mae"], champion_mae)
    return {
        "run_id": run_id,
        "challenger_mae": ch["mae"],
        "champion_mae": champion_mae,
        "champion_version": None if champion is None else int(champion.version),
        "skipped": False,
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    return evaluate(
        args.zone or settings.zones[0], day_arg(args), args.run_id, settings, config_path=args.config
    )


def parser() -> argparse.ArgumentParser:
    p = base_parser("Evaluate a challenger run and the champion on the same window.")
    p.add_argument(
        "--run-id", required=True, help="Run id from tasks.train ('none' when training was skipped)."
    )
    p.add_argument(
        "--config", type=Path, default=None, help="JSON overriding mlruns_config/models.json keys."
    )
    return p


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
