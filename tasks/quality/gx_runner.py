"""Run resolved suites in a file-mode Great Expectations context.

The context lives under ``<data_root>/reports/gx`` so every validation result
and the Data Docs site (``gx/uncommitted/data_docs/local_site/index.html``)
sit beside the data they describe. Each suite is registered with
``add_or_update_*`` so re-runs of a day replace definitions instead of
failing, and runs through a Checkpoint; ``publish_docs`` renders the results
and their suite pages once per process and makes the site work offline
(``tasks.quality.docs_offline``: no CDN, no dead links).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.quality.docs_offline import make_offline

if TYPE_CHECKING:
    import pandas as pd

    from tasks.quality.specs import ExpectationSpec, SuiteSpec

log = logging.getLogger(__name__)

DATASOURCE = "dap"
SAMPLE_ROWS = 5
#: Validation results listed on the Data Docs index page (newest first).
DOCS_INDEX_LIMIT = 300


@dataclass
class CheckOutcome:
    """The outcome of one expectation, with an example of the rows that broke it."""

    name: str
    expectation_type: str
    severity: str
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SuiteOutcome:
    """All checks of one suite on one data day, and where the full result is."""

    suite: str
    data_day: str
    checks: list[CheckOutcome]
    result_path: str = ""
    data_docs: str = ""
    rows: int = 0

    @property
    def failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.success and c.severity == "fail"]

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.success and c.severity != "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed


def _jsonable(value: Any) -> Any:
    import math

    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def sample_rows(frame: pd.DataFrame, index: list[Any] | None, column: str | None) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS offending rows: the contract columns plus the checked column."""
    if not index:
        return []
    keep = [c for c in frame.columns if not str(c).startswith("_")]
    if column and column in frame and column not in keep:
        keep.append(column)
    picked = [i for i in index[:SAMPLE_ROWS] if i in frame.index]
    rows = frame.loc[picked, keep].to_dict(orient="records")
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in rows]


def import_gx() -> Any:
    """``great_expectations``, imported without google.api_core's Python-EOL FutureWarning."""
    import warnings

    # GX logs every datasource save and docs-decorator registration at INFO.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import great_expectations as gx
    return gx


class GxRunner:
    """One GX file context per process; suites run one after the other."""

    def __init__(self, root: Path) -> None:
        gx = import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._pending: list[tuple[Any, SuiteOutcome]] = []
        self.context = gx.get_context(mode="file", project_root_dir=str(root))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        # The Data Docs index reads every stored validation result on each build;
        # cap it to the newest ones so a gate stays fast after years of daily runs
        # (older result pages stay on disk and in reports/gx/<D>/).
        sites = dict(self.context.variables.data_docs_sites or {})
        local = dict(sites.get("local_site", {}))
        local["site_index_builder"] = {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": DOCS_INDEX_LIMIT,
        }
        sites["local_site"] = local
        self.context.variables.data_docs_sites = sites
        with self.locked():
            try:
                self.datasource = self.context.data_sources.get(DATASOURCE)
            except (KeyError, ValueError, LookupError):
                self.datasource = self.context.data_sources.add_or_update_pandas(DATASOURCE)

    @property
    def docs_site(self) -> Path:
        """The local Data Docs site (``gx/uncommitted/data_docs/local_site``)."""
        return self.root / "gx" / "uncommitted" / "data_docs" / "local_site"

    def docs_index(self) -> str:
        sites = self.context.get_docs_sites_urls()
        return str(sites[0]["site_url"]) if sites else ""

    def _batch_definition(self, asset_name: str) -> Any:
        try:
            asset = self.datasource.get_asset(asset_name)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(asset_name)
        try:
            return asset.get_batch_definition("day")
        except (KeyError, LookupError):
            return asset.add_batch_definition_whole_dataframe("day")

    @staticmethod
    def _expectation(spec: ExpectationSpec) -> Any:
        gx = import_gx()
        cls = getattr(gx.expectations, spec.gx_class_name, None)
        if cls is None:
            raise ValueError(f"{spec.name}: GX has no expectation {spec.type}")
        return cls(
            **spec.kwargs,
            meta={"name": spec.name, "severity": spec.severity, "why": spec.why},
            severity="critical" if spec.severity == "fail" else "warning",
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise writers of the shared context (zones validate in parallel processes).

        GX rewrites ``great_expectations.yml`` when an asset is added and the Data
        Docs index on every build; an advisory lock keeps concurrent tasks from
        losing each other's changes (on shared volumes this needs working flock).
        """
        with (self.root / ".gx.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run(self, suite: SuiteSpec, frame: pd.DataFrame, *, run_key: str, data_day: str) -> SuiteOutcome:
        """Validate ``frame`` (already prepared) against ``suite``; ``run_key`` names the GX objects."""
        with self.locked():
            return self._run(suite, frame, run_key=run_key, data_day=data_day)

    def _run(self, suite: SuiteSpec, frame: pd.DataFrame, *, run_key: str, data_day: str) -> SuiteOutcome:
        gx = import_gx()
        from great_expectations.core.run_identifier import RunIdentifier

        # Build the suite in one go: add_expectation on a stored suite persists every call.
        gx_suite = self.context.suites.add_or_update(
            gx.ExpectationSuite(
                name=run_key,
                expectations=[self._expectation(spec) for spec in suite.expectations],
                meta={"suite": suite.name, "description": suite.description},
            )
        )
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=run_key, data=self._batch_definition(suite.name), suite=gx_suite)
        )
        # No Data Docs action per checkpoint: rendering costs ~3 s per call (Jinja
        # recompiles its templates), so publish_docs() renders all results once.
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=run_key,
                validation_definitions=[definition],
                actions=[],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            )
        )
        result = checkpoint.run(
            batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=f"{run_key}.{data_day}")
        )
        (identifier, validation) = next(iter(result.run_results.items()))
        by_name = {spec.name: spec for spec in suite.expectations}
        checks: list[CheckOutcome] = []
        for item in validation.results:
            config = item.expectation_config
            assert config is not None  # GX sets it on every result of a suite run
            name = (config.meta or {}).get("name", config.type)
            spec = by_name.get(name)
            res = item.result or {}
            error = None
            if item.exception_info and item.exception_info.get("raised_exception"):
                error = str(item.exception_info.get("exception_message"))
            column = config.kwargs.get("column")
            checks.append(
                CheckOutcome(
                    name=name,
                    expectation_type=config.type,
                    severity=spec.severity if spec else "fail",
                    success=bool(item.success),
                    observed=_jsonable(res.get("observed_value")),
                    unexpected_count=res.get("unexpected_count"),
                    sample=[]
                    if item.success
                    else sample_rows(frame, res.get("partial_unexpected_index_list"), column),
                    error=error,
                    why=spec.why if spec else "",
                )
            )
        outcome = SuiteOutcome(suite=suite.name, data_day=data_day, checks=checks, rows=len(frame))
        self._pending.append((identifier, outcome))
        return outcome

    def publish_docs(self) -> str:
        """Render this process's pending results into Data Docs; returns the index URL."""
        if self._pending:
            from great_expectations.data_context.types.resource_identifiers import (
                ExpectationSuiteIdentifier,
            )

            results = [ident for ident, _ in self._pending]
            # The index links every result's suite page: render those too, or the links are dead.
            suites = {ExpectationSuiteIdentifier(name=i.expectation_suite_identifier.name) for i in results}
            with self.locked():
                self.context.build_data_docs(resource_identifiers=[*results, *sorted(suites, key=str)])
                make_offline(self.docs_site)
            for ident, outcome in self._pending:
                urls = self.context.get_docs_sites_urls(resource_identifier=ident)
                outcome.data_docs = str(urls[0]["site_url"]) if urls else ""
            self._pending.clear()
        return self.docs_index()
