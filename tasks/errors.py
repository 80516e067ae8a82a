"""Domain exceptions: each says what failed, for which day, and what to do."""

from __future__ import annotations


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
