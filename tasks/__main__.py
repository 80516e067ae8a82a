"""``python -m tasks``: list the stage commands (the image's default command)."""

from __future__ import annotations

STAGES = {
    "ingest": "land inbox files (raw + provenance), parse, check, write the processed zone",
    "validate": "quality gate (--dataset inputs|features|schedule): GX suites and TFDV",
    "features": "feature table of the delivery day",
    "train": "train the price models (--if-due) and log them to MLflow",
    "evaluate": "challenger vs champion on the same window",
    "register": "register the model version, aliases and the promotion gate",
    "forecast": "price/volume forecast of the delivery day from the champion",
    "schedule": "optimise positions, storage dispatch and bids; write a schedule version",
    "publish": "move the day's `latest` pointer to a validated schedule version",
    "realise": "settle a published schedule at the actual prices: realised profit, capture, forecast error",
}


def main() -> None:
    print("Stages: python -m tasks.<stage> --delivery-date YYYY-MM-DD [--zone Z] ... (--help on each)")
    for name, what in STAGES.items():
        print(f"  {name:<18} {what}")
    print("Service: python -m tasks.serve  the schedule API for the desk (docs/desk-api.md; DAP_API_TOKENS)")
    print(
        "Not in the image: research commands (python -m research.backtest, research.backtest_trading) "
        "and development tools (python -m devtools.simulator, devtools.bootstrap, devtools.demo)."
    )


if __name__ == "__main__":
    main()
