"""Register a trained run and promote it to champion when it wins.

``python -m tasks.register --delivery-date D --zone Z --run-id R``

Every run becomes a version of the zone's registered model (idempotent: a run
already registered reuses its version) with alias ``challenger``. It gets
alias ``champion`` when

* the zone has no champion yet, or
* ``challenger_mae <= champion_mae * (1 - settings.promotion_margin)``, both
  MAEs (median forecast, EUR/MWh) measured by tasks.evaluate on the
  challenger's evaluation window.

A tie passes with margin 0. The decision, the rule and the figures are logged
as tags/metrics on run R and as tags on the version. Figures from an
evaluation against another champion than the current one are refreshed first.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)


def decide(challenger_mae: float, champion_mae: float | None, margin: float) -> tuple[bool, str]:
    """Pure promotion rule (see the module docstring)."""
    if champion_mae is None:
        return True, "no champion yet"
    threshold = champion_mae * (1.0 - margin)
    if challenger_mae <= threshold:
        return (
            True,
            f"challenger MAE {challenger_mae:.4f} <= {threshold:.4f} = champion MAE {champion_mae:.4f} x (1 - {margin})",
        )
    return (
        False,
        f"challenger MAE {challenger_mae:.4f} > {threshold:.4f} = champion MAE {champion_mae:.4f} x (1 - {margin})",
    )


def register(
    zone: str,
    day: date,
    run_id: str | None,
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
) -> dict[str, Any]:
    """Register run ``run_id`` as a version, alias it challenger, promote if it wins."""
    from tasks.registry import tracking_server

    settings = settings or get_settings()
    with tracking_server(settings):
        return _register(zone, day, run_id, settings, config_path)


def _register(
    zone: str, day: date, run_id: str | None, settings: Settings, config_path: Path | None
) -> dict[str, Any]:
    from tasks.evaluate import NO_RUN
    from tasks.registry import CHALLENGER, CHAMPION, champion_version, client, load_config, model_name

    config = load_config(config_path)
    name = model_name(zone, config)
    champion = champion_version(settings, zone, config)
    if not run_id or run_id in NO_RUN:
        return {
            "model_name": name,
            "version": None if champion is None else int(champion.version),
            "promoted": False,
            "skipped": True,
        }
    current = _champion_label(champion, run_id)
    run = _evaluated_run(zone, day, run_id, current=current, settings=settings, config_path=config_path)
    challenger_mae = float(run.data.metrics["eval_challenger_mae"])
    champion_mae = (
        run.data.metrics.get("eval_champion_mae")
        if current not in ("none",) and not current.startswith("self")
        else None
    )
    mc = client(settings)
    version = _model_version(mc, name, run, zone, day)
    mc.set_registered_model_alias(name, CHALLENGER, version.version)
    if current.startswith("self"):
        promoted, reason = True, f"version {version.version} is already the champion"
    else:
        promoted, reason = decide(challenger_mae, champion_mae, settings.promotion_margin)
    if promoted:
        mc.set_registered_model_alias(name, CHAMPION, version.version)
    _log_decision(
        mc,
        name,
        run_id,
        version=version,
        promoted=promoted,
        reason=reason,
        current=current,
        challenger_mae=challenger_mae,
        margin=settings.promotion_margin,
    )
    return {
        "model_name": name,
        "version": int(version.version),
        "promoted": promoted,
        "reason": reason,
        "challenger_mae": challenger_mae,
        "champion_mae": champion_mae,
        "skipped": False,
    }


def _champion_label(champion: ModelVersion | None, run_id: str) -> str:
    """The champion version as the evaluation tags it: ``none``, ``<version>`` or ``self:<version>``."""
    if champion is None:
        return "none"
    if champion.run_id == run_id:
        return f"self:{champion.version}"
    return str(champion.version)


def _evaluated_run(
    zone: str, day: date, run_id: str, *, current: str, settings: Settings, config_path: Path | None
) -> Run:
    """Run ``run_id``, evaluated (again) when it lacks figures or has them against another champion."""
    from tasks.evaluate import _get_run, evaluate

    run = _get_run(settings, run_id)
    evaluated_against = run.data.tags.get("eval_champion_version")
    if "eval_challenger_mae" not in run.data.metrics or evaluated_against != current:
        log.info(
            "evaluation of %s is missing or against another champion (%s); evaluating",
            run_id,
            evaluated_against,
        )
        evaluate(zone, day, run_id, settings, config_path=config_path)
        run = _get_run(settings, run_id)
    return run


def _model_version(mc: MlflowClient, name: str, run: Run, zone: str, day: date) -> ModelVersion:
    """The run's version of model ``name``: the existing one (idempotent), else a new registration."""
    import mlflow

    from tasks.registry import MODEL_ARTIFACT

    run_id = run.info.run_id
    existing = mc.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:
        return max(existing, key=lambda v: int(v.version))
    # MLflow 3 keeps logged models apart from run artifacts: register the logged model itself.
    source = run.data.tags.get("model_uri") or f"runs:/{run_id}/{MODEL_ARTIFACT}"
    return mlflow.register_model(source, name, tags={"zone": zone, "delivery_date": day.isoformat()})


def _log_decision(
    mc: MlflowClient,
    name: str,
    run_id: str,
    *,
    version: ModelVersion,
    promoted: bool,
    reason: str,
    current: str,
    challenger_mae: float,
    margin: float,
) -> None:
    """The decision, its rule and figures as tags and metrics on the run and tags on the version."""
    decision = "promoted" if promoted else "kept_champion"
    rule = "challenger_mae <= champion_mae * (1 - promotion_margin); promote when no champion"
    for key, value in {
        "promotion_decision": decision,
        "promotion_reason": reason,
        "promotion_rule": rule,
        "registered_version": str(version.version),
        "champion_before": current,
    }.items():
        mc.set_tag(run_id, key, value)
    mc.log_metric(run_id, "promotion_margin", margin)
    mc.log_metric(run_id, "promoted", float(promoted))
    mc.set_model_version_tag(name, version.version, "promotion_decision", decision)
    mc.set_model_version_tag(name, version.version, "promotion_reason", reason)
    mc.set_model_version_tag(name, version.version, "eval_mae", f"{challenger_mae:.6f}")
    log.info("%s v%s: %s (%s)", name, version.version, decision, reason)


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    return register(
        args.zone or settings.zones[0], day_arg(args), args.run_id, settings, config_path=args.config
    )


def parser() -> argparse.ArgumentParser:
    p = base_parser("Register a trained run; promote it to champion when it beats the champion.")
    p.add_argument(
        "--run-id", required=True, help="Run id from tasks.train ('none' when training was skipped)."
    )
    p.add_argument(
        "--config", type=Path, default=None, help="JSON overriding mlruns_config/models.json keys."
    )
    return p


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
