"""Domain exceptions: each says what failed, for which day, and what to do.

Two kinds, told apart by the stage's exit code (``tasks/cli.py``), which decides
whether Airflow retries the task:

* :class:`PipelineError` (exit :data:`PIPELINE_ERROR_EXIT`): a gate, bad input, a
  missing model. Re-running cannot fix it; the task fails without retry.
* :class:`ServiceUnavailable` (exit :data:`SERVICE_UNAVAILABLE_EXIT`): a server the
  stage needs did not answer. A later try may succeed; the task is retried.
"""

from __future__ import annotations

#: Exit code of a stage that failed on purpose; Airflow does not retry it.
PIPELINE_ERROR_EXIT = 2
#: Exit code of a stage whose server was unreachable (EX_TEMPFAIL of sysexits.h); retried.
SERVICE_UNAVAILABLE_EXIT = 75


class PipelineError(Exception):
    """Base class of all errors the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """Settings or portfolio that cannot work (e.g. an unknown zone)."""


class IngestError(PipelineError):
    """A source file could not be landed; it is quarantined with a reason."""


class MissingInputError(PipelineError):
    """An input a stage needs for its delivery day is not there (yet)."""


class ValidationFailed(PipelineError):
    """A data quality gate failed; the message names dataset, day and checks."""

    def __init__(self, message: str, *, dataset: str = "", delivery_day: str = "", report: str = "") -> None:
        super().__init__(message)
        self.dataset = dataset
        self.delivery_day = delivery_day
        self.report = report


class GateClosedError(PipelineError):
    """A day was quarantined by an earlier gate; nothing may be built on it."""


class PointerError(PipelineError):
    """A day's ``LATEST`` pointer is empty, unreadable or names no version; publishing rewrites it."""


class ModelNotFoundError(PipelineError):
    """No champion model is registered yet for a zone."""


class IncompatibleModelError(ModelNotFoundError):
    """A registered model was saved by a release whose model code has since moved or gone."""


class InfeasibleScheduleError(PipelineError):
    """The optimiser found no schedule; the message names the constraint."""


class NiFiError(PipelineError):
    """NiFi could not be reached or the flow did not finish in time."""


class DatasetError(PipelineError):
    """A price dataset (e.g. an epftoolbox-layout CSV) cannot be read as whole, consecutive days."""


class ServiceUnavailable(Exception):
    """A server the stage needs (the MLflow tracking server) is unreachable; a retry may fix it.

    Deliberately not a PipelineError: the stage exits :data:`SERVICE_UNAVAILABLE_EXIT`,
    so the task is retried. The message names the server.
    """
