"""NiFi tasks in front of ingestion when ``ingest_mode == "nifi"``.

In the default embedded mode this adds nothing: tasks.ingest fills the inbox
from the simulator or replay source itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.config import Settings


def ingest_trigger(settings: Settings) -> tuple[Any, ...]:
    if settings.ingest_mode != "nifi":
        return ()
    raise NotImplementedError("wired once tasks.nifi lands")
