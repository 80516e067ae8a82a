"""Daily re-calibration of the weekly-fitted members: what it is worth, before building it.

The served members are re-fitted weekly (``settings.train_every_days``) and forecast
the following days unchanged. The epftoolbox benchmark re-calibrates every day. This
module re-runs one member of a rolling-backtest work directory
(``python -m research.ensemble_backtest plan|search ...``) with the same weekly fits
plus a daily step before each forecast day D, using only days before D:

- ``dnn``: the weekly quantile DNN (the member step's fit: same seed, search values,
  early stopping on the window's last days), then before each day a chained fine-tune
  (:func:`research.finetune.fine_tune`) on the ``--recent`` days that end D-1.
- ``lear``: each calibration window's weekly LEAR, then before each day a re-fit on the
  window that ends D-1 with the penalties the weekly fit chose (:meth:`tasks.forecasting.lear.LEAR.refit`).

It writes ``--out`` (``date,hour,actual,<member>`` over the plan's forecast days), which
``python -m research.ensemble_backtest combine --substitute <member>=<out>:<member>``
puts in place of the member, and prints the member's rMAE on the test days.

``python -m research.recalibrate dnn|lear --dataset CSV --work DIR --out FILE [--recent N --epochs K --learning-rate LR]``
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from research.ensemble_backtest import (
    QUANTILES,
    Plan,
    PlanError,
    add_work_options,
    fit_dnn,
    read_plan,
    read_search,
)
from tasks.cli import run_stage

if TYPE_CHECKING:
    from tasks.forecasting.definition import EnsembleDefinition
    from tasks.forecasting.design import DayData

log = logging.getLogger("research.recalibrate")


def recent_days(day: int, recent: int) -> np.ndarray:
    """The ``recent`` days before ``day`` (fewer at the start of the history): what D's step may read."""
    from tasks.forecasting.design import MAX_LAG

    return np.arange(max(MAX_LAG, day - recent), day)


def dnn_daily(
    data: DayData,
    defn: EnsembleDefinition,
    plan: Plan,
    tuned: dict[str, Any],
    *,
    recent: int,
    epochs: int,
    learning_rate: float,
) -> np.ndarray:
    """The DNN's forecasts [plan days, slots, q]: weekly fits, each day's forecast after a chained fine-tune."""
    from threadpoolctl import threadpool_limits

    from research.finetune import fine_tune
    from tasks.forecasting import design

    out = np.full((plan.stop - plan.first, data.slots, len(QUANTILES)), np.nan)
    with threadpool_limits(limits=1, user_api="blas"):
        for t, t_end in plan.origins():
            days = plan.train_days(t)
            model = fit_dnn(defn, plan, design.build_design(data, days), design.targets(data, days), tuned)
            for day in range(t, t_end):
                rec = recent_days(day, recent)
                fine_tune(
                    model,
                    design.build_design(data, rec),
                    design.targets(data, rec),
                    epochs=epochs,
                    learning_rate=learning_rate,
                )
                out[day - plan.first] = model.predict(design.build_design(data, np.array([day])))[0]
            log.info("dnn: origin %d, %d days fine-tuned", t, t_end - t)
    return out


def lear_daily(data: DayData, defn: EnsembleDefinition, plan: Plan) -> np.ndarray:
    """LEAR's forecasts [plan days, slots]: each window's weekly fit, re-fitted daily with its penalties; mean of windows."""
    from threadpoolctl import threadpool_limits

    from tasks.forecasting import design
    from tasks.forecasting.definition import lag_point_member

    spec = next((m for m in defn.point_members if m.name == "lear"), None)
    if spec is None:
        raise PlanError("the definition has no lear member (ensemble.members in models.json)")
    out = np.full((plan.stop - plan.first, data.slots), np.nan)
    with threadpool_limits(limits=1, user_api="blas"):
        for t, t_end in plan.origins():
            days = plan.train_days(t)
            member = lag_point_member(spec, data.exog_names, defn.seed).fit(
                design.build_design(data, days), design.targets(data, days)
            )
            for day in range(t, t_end):
                if day > t:  # the weekly fit already ends the day before t
                    shifted = plan.train_days(day)
                    x, y = design.build_design(data, shifted), design.targets(data, shifted)
                    for model in getattr(member, "models", [member]):  # each calibration window
                        model.refit(x, y)
                out[day - plan.first] = member.predict(design.build_design(data, np.array([day])))[0]
            log.info("lear: origin %d, %d days re-fitted", t, t_end - t)
    return out


def forecasts_csv(data: DayData, plan: Plan, member: str, point: np.ndarray) -> str:
    """``date,hour,actual,<member>`` for the plan's forecast days (hourly files, as --substitute reads)."""
    if data.slots != 24:
        raise PlanError(
            f"recalibrate writes hourly forecast files; this dataset has {data.slots} slots a day"
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["date", "hour", "actual", member])
    for i, day in enumerate(range(plan.first, plan.stop)):
        for hour in range(24):
            writer.writerow(
                [str(data.dates[day]), hour, f"{data.prices[day, hour]:.4f}", f"{point[i, hour]:.4f}"]
            )
    return buf.getvalue()


def rmae_on_test_days(data: DayData, plan: Plan, point: np.ndarray) -> float:
    """The member's rMAE on the test days, as research.backtest scores it (naive from the test days only)."""
    from tasks.forecasting.metrics import point_metrics
    from tasks.forecasting.naive import weekly_naive

    actual = data.prices[plan.start : plan.stop]
    return float(point_metrics(actual, point[plan.start - plan.first :], weekly_naive(actual))["rmae"])


def main(args: argparse.Namespace) -> dict[str, Any]:
    from research.ensemble_backtest import prepare
    from tasks.storage import write_bytes_atomic

    data, defn, _ = prepare(args)
    plan, _ = read_plan(args.work)
    t0 = time.perf_counter()
    if args.member == "dnn":
        tuned = dict(read_search(args.work)["best"])
        point = dnn_daily(
            data, defn, plan, tuned, recent=args.recent, epochs=args.epochs, learning_rate=args.learning_rate
        )[..., QUANTILES.index(0.5)]
    else:
        point = lear_daily(data, defn, plan)
    write_bytes_atomic(args.out, forecasts_csv(data, plan, args.member, point).encode())
    return {
        "member": args.member,
        "out": str(args.out),
        "rmae": rmae_on_test_days(data, plan, point),
        "seconds": time.perf_counter() - t0,
        "daily_step": {"recent": args.recent, "epochs": args.epochs, "learning_rate": args.learning_rate}
        if args.member == "dnn"
        else "lear refit with the weekly penalties",
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("member", choices=("dnn", "lear"))
    add_work_options(p)
    p.add_argument("--out", type=Path, required=True, help="Forecasts file to write (CSV).")
    p.add_argument("--recent", type=int, default=182, help="dnn: days before D the daily fine-tune reads.")
    p.add_argument("--epochs", type=int, default=3, help="dnn: fine-tune epochs each day.")
    p.add_argument("--learning-rate", type=float, default=1e-4, help="dnn: fine-tune learning rate.")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def cli(argv: Sequence[str] | None = None) -> int:
    return run_stage(main, build_parser(), argv)


if __name__ == "__main__":
    from tasks.cli import exit_stage

    exit_stage(cli())
