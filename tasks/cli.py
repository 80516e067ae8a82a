"""Shared command-line contract of every stage.

``python -m tasks.<stage> --delivery-date YYYY-MM-DD [--zone Z] [...]`` runs
the stage and reports a small JSON result (paths, run IDs, counts): printed
as the last stdout line, and written where Airflow reads it — the KPO xcom
sidecar's ``/airflow/xcom/return.json`` in a pod, or ``$DAP_RESULT_FILE``
when the local runner starts the command.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from tasks.config import settings_error
from tasks.errors import PIPELINE_ERROR_EXIT, SERVICE_UNAVAILABLE_EXIT, PipelineError, ServiceUnavailable
from tasks.redact import RedactingFilter, redact
from tasks.timeutil import parse_day

RESULT_MARKER = "DAP_RESULT "
POD_XCOM_FILE = Path("/airflow/xcom/return.json")

log = logging.getLogger("tasks")


def base_parser(description: str, *, zone: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--delivery-date", required=True, type=parse_day, help="Delivery day (local market day), YYYY-MM-DD."
    )
    if zone:
        parser.add_argument("--zone", default=None, help="Bidding zone; default: the first configured zone.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # A stage's log never shows a password, whichever library's message carries it.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def emit_result(result: dict[str, Any]) -> None:
    """Report the stage's result where the runner (local or pod) picks it up."""
    text = json.dumps(result, sort_keys=True, default=str)
    target = os.environ.get("DAP_RESULT_FILE")
    paths = [Path(target)] if target else []
    if POD_XCOM_FILE.parent.is_dir():
        paths.append(POD_XCOM_FILE)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(RESULT_MARKER + text, flush=True)


def run_stage(
    main: Callable[[argparse.Namespace], dict[str, Any]],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse args, run the stage, emit its result, push its metrics (tasks.metrics).

    A PipelineError exits 2 (not retried), a ServiceUnavailable 75 (retried); both
    with their one-line message and no traceback. Metrics are pushed whatever the
    outcome; a Pushgateway that is down costs a warning, never the exit code.
    """
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    code = 1  # an unexpected exception propagates with its traceback
    try:
        with _data_root_mirror():
            result = main(args)
        emit_result(result)
        code = 0
    except PipelineError as exc:
        error, code = exc, _fail(exc, PIPELINE_ERROR_EXIT)
    except ServiceUnavailable as exc:
        error, code = exc, _fail(exc, SERVICE_UNAVAILABLE_EXIT)
    except (ValidationError, SettingsError) as exc:
        # Settings built outside get_settings(): no retry fixes them either.
        if isinstance(exc, ValidationError) and exc.title != "Settings":
            raise
        error, code = exc, _fail(settings_error(exc), PIPELINE_ERROR_EXIT)
    finally:
        _push_metrics(
            main, args, duration_s=time.perf_counter() - started, code=code, result=result, error=error
        )
    return code


def exit_stage(code: int) -> NoReturn:
    """End a stage process with ``code`` once its result and logs are out, without the interpreter's teardown.

    Every stage command ends here (``exit_stage(run_stage(main, parser()))``). The teardown
    can abort the process after the stage's work is done: a pyarrow thread-pool worker that
    still holds a Python object takes the GIL while the interpreter finalizes and ends in
    ``std::terminate`` ("terminate called without an active exception", SIGABRT; see
    apache/arrow#34314). The atexit handlers (logging, MLflow's end of an active run) still
    run, and the streams are flushed, before ``os._exit``.
    """
    import atexit

    atexit._run_exitfuncs()  # logging's shutdown among them (registered when logging is imported)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(code)


def stage_name(main: Callable[..., Any]) -> str:
    """``ingest`` for ``tasks.ingest.main``, also when the module runs as ``__main__`` (``python -m``)."""
    module = main.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    return module.rsplit(".", 1)[-1]


def _push_metrics(
    main: Callable[..., Any],
    args: argparse.Namespace,
    *,
    duration_s: float,
    code: int,
    result: dict[str, Any] | None,
    error: BaseException | None,
) -> None:
    """Push the stage's metrics when a Pushgateway is configured; never raises."""
    try:
        from tasks.config import get_settings

        settings = get_settings()
        if not settings.pushgateway_url or not isinstance(getattr(args, "delivery_date", None), date):
            return
        from tasks.metrics import StageRun, push_stage_metrics

        run = StageRun(
            stage=stage_name(main),
            day=args.delivery_date,
            zone=getattr(args, "zone", None),
            duration_s=duration_s,
            exit_code=code,
            result=result,
            error=error,
            args={k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool))},
        )
        push_stage_metrics(run, settings)
    except Exception as exc:  # bad settings are the stage's own error to report
        log.warning("stage metrics not pushed (%s: %s)", type(exc).__name__, exc)


def _data_root_mirror() -> AbstractContextManager[object]:
    """The object-store mirror of the data root around a stage (a no-op without DAP_DATA_URL)."""
    from tasks.config import get_settings

    settings = get_settings()
    if not settings.data_url:
        return nullcontext()
    from tasks.objectstore import mirrored

    return mirrored(settings)


def _fail(exc: Exception, code: int) -> int:
    """Exit ``code`` (2: no retry; 75: retried) with the error's one line on stderr."""
    log.error("%s: %s", type(exc).__name__, exc)
    print_error(exc)
    return code


def print_error(exc: Exception) -> None:
    """The error's one line on stderr (``ERROR <type>: <message>``, credentials redacted)."""
    print(redact(f"ERROR {type(exc).__name__}: {exc}"), file=sys.stderr, flush=True)


def day_arg(args: argparse.Namespace) -> date:
    value: date = args.delivery_date
    return value
