"""Airflow operators and a sensor that run the NiFi ingestion flow (``ingest_mode=nifi``).

DAG files import this package at parse time, so it imports only ``airflow.sdk``
and the standard library; nipyapi is imported inside ``execute``/``poke``.
Connection details come from the Airflow connection ``Settings.nifi_conn_id``
(default ``nifi_default``), read at execute time.
"""

from __future__ import annotations

from tasks.nifi.expected import expected_inbox_files, missing_expected_files
from tasks.nifi.hook import NiFiHook
from tasks.nifi.operators import NiFiFlowCompleteSensor, NiFiRunFlowOperator, NiFiStopFlowOperator
from tasks.nifi.wiring import nifi_ingest_tasks

__all__ = [
    "NiFiFlowCompleteSensor",
    "NiFiHook",
    "NiFiRunFlowOperator",
    "NiFiStopFlowOperator",
    "expected_inbox_files",
    "missing_expected_files",
    "nifi_ingest_tasks",
]
