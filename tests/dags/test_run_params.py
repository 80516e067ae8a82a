"""The ``delivery_date`` run parameter of ``day_ahead_daily``: schema, validation, and how a run reads it.

A real run with the param set goes through ``dag.test`` in test_dag_wiring; these
checks need no metadata DB.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import DAGS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["day_ahead_daily"]


def test_delivery_date_is_a_nullable_date_param(dag: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    param = dag.params.get_param("delivery_date")
    assert param.value is None  # scheduled runs: the day after the run fires
    assert param.schema["type"] == ["string", "null"]
    assert param.schema["format"] == "date"  # the trigger form shows a date picker
    assert param.description
    # What the UI's trigger form reads: the serialized DAG keeps the schema.
    serialized = dict(DagSerialization.serialize_dag(dag)["params"])["delivery_date"]
    assert serialized["schema"]["__var"]["format"] == "date"


@pytest.mark.parametrize("value", ["2026-04-02", None])
def test_valid_delivery_dates_pass(dag: Any, value: str | None) -> None:
    params = copy.deepcopy(dag.params)
    params.update({"delivery_date": value})
    assert params.validate() == {"delivery_date": value}


@pytest.mark.parametrize("value", ["2026-02-30", "02/04/2026", "tomorrow", 20260402])
def test_invalid_delivery_date_is_refused(dag: Any, value: object) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dag.params)
    # What creating a run with this conf does: merge it into the params, which validates it.
    with pytest.raises(ParamValidationError, match="delivery_date"):
        params.update({"delivery_date": value})


class _Run:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.run_after = datetime(2026, 3, 28, 9, 15, tzinfo=ZoneInfo("UTC"))


FIRES = datetime(2026, 3, 28, 10, 15, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("params", "conf", "logical_date", "expected"),
    [
        ({"delivery_date": "2026-04-02"}, {}, FIRES, "2026-04-02"),  # the trigger form
        ({"delivery_date": "2026-04-02"}, {"delivery_date": "2026-04-02"}, None, "2026-04-02"),  # --conf
        ({"delivery_date": None}, {"delivery_date": "2026-04-03"}, FIRES, "2026-04-03"),  # conf not merged
        ({"delivery_date": None}, {}, FIRES, "2026-03-29"),  # scheduled: the day after it fires
        ({"delivery_date": None}, {}, None, "2026-03-29"),  # manual, no logical date: run_after
    ],
)
def test_run_reads_the_param_then_conf_then_the_firing_day(
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
    conf: dict[str, Any],
    logical_date: datetime | None,
    expected: str,
) -> None:
    from dap_common import stages

    from tasks.config import get_settings

    context = {"dag_run": _Run(conf), "params": params, "logical_date": logical_date}
    monkeypatch.setattr(stages, "get_current_context", lambda: context)
    assert stages._run_delivery_day(get_settings()) == expected
