"""``python -m tasks.serve [--host H] [--port P]``: run the schedule API on uvicorn.

One process per pod (the chart's HorizontalPodAutoscaler adds pods): the metrics and
the cache live in the process. Settings: ``DAP_DATA_ROOT``, ``DAP_API_TOKENS``,
``DAP_API_HOST``, ``DAP_API_PORT`` (docs/desk-api.md). Exits 2 with one line when
the settings cannot work (e.g. no token).
"""

from __future__ import annotations

import argparse
import sys

from tasks.config import get_settings
from tasks.errors import PipelineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=None, help="Bind address (default DAP_API_HOST).")
    parser.add_argument("--port", type=int, default=None, help="Port (default DAP_API_PORT).")
    parser.add_argument("--log-level", default="info", help="uvicorn log level.")
    parser.add_argument("--no-access-log", action="store_true", help="Do not log every request.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvicorn

        from tasks.serve.app import create_app

        settings = get_settings()
        app = create_app(settings)
    except PipelineError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        proxy_headers=True,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
