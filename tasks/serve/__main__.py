"""``python -m tasks.serve [--host H] [--port P]``: run the schedule API on uvicorn.

One process per pod (the chart's HorizontalPodAutoscaler adds pods): the metrics and
the cache live in the process. Settings: ``DAP_DATA_ROOT``, ``DAP_API_TOKENS``,
``DAP_API_HOST``, ``DAP_API_PORT``, and ``DAP_DATA_URL`` with ``DAP_API_SYNC_SECONDS``
for an object-store data root (docs/desk-api.md). Exits 2 with one line when the
settings cannot work (e.g. no token), 75 when the object store cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from tasks.cli import print_error
from tasks.config import get_settings
from tasks.errors import PIPELINE_ERROR_EXIT, SERVICE_UNAVAILABLE_EXIT, PipelineError, ServiceUnavailable


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
        print_error(exc)
        return PIPELINE_ERROR_EXIT
    except ServiceUnavailable as exc:  # the object store of DAP_DATA_URL: the pod restarts and tries again
        print_error(exc)
        return SERVICE_UNAVAILABLE_EXIT
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
