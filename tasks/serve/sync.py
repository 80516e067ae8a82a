"""The API's own mirror of an object-store data root (``DAP_DATA_URL``), kept up to date.

With ``DAP_DATA_URL=s3://…`` the API serves ``DAP_DATA_ROOT`` as a local mirror of
the store's ``schedules/`` and ``forecasts/`` (an ``emptyDir`` in the pod): one pull
when the app is created (the API does not start on a store it cannot read: exit 75),
then a pull every ``api_sync_seconds`` in a background thread. Pulls download a
version's files before its manifest and the day's ``LATEST`` last
(:meth:`tasks.objectstore.ObjectStore.pull`), each by atomic rename, so a request
never sees a pointer to a version that is not complete. The API never writes to the
store. When a pull fails the API keeps serving what it has, logs a warning naming the
endpoint, counts the error and reports the age of its data on ``/ready`` and in
``dap_api_store_sync_timestamp_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.errors import ServiceUnavailable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tasks.config import Settings

log = logging.getLogger(__name__)

#: The folders of the data root the API reads.
SERVED_FOLDERS = ("schedules", "forecasts")


class StoreSync:
    """Pull the served folders of ``settings.data_url`` into ``settings.data_root``."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        from tasks.objectstore import ObjectStore

        self.url = settings.data_url
        self.store = ObjectStore(settings.data_url, Path(settings.data_root))
        self.interval = float(settings.api_sync_seconds)
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced = Gauge(
            "dap_api_store_sync_timestamp_seconds",
            "Unix time of the API's last successful pull from the object store.",
            registry=registry,
        )
        self._errors = Counter(
            "dap_api_store_sync_errors", "Pulls from the object store that failed.", registry=registry
        )

    def sync_once(self) -> dict[str, int]:
        """One pull; raises ServiceUnavailable (naming the endpoint) when the store cannot be read."""
        result = self.store.pull(only=SERVED_FOLDERS)
        self.last_ok, self.last_error = time.time(), None
        self._synced.set(self.last_ok)
        if result["downloaded"] or result["removed"]:
            log.info("object store %s: pulled %s", self.url, result)
        return result

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except (ServiceUnavailable, OSError) as exc:  # store down, or the mirror's disk: retry next round
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._errors.inc()
                log.warning("object store %s: pull failed, serving the mirror as it is: %s", self.url, exc)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="store-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)

    def status(self) -> dict[str, Any]:
        """For ``/ready``: the store, the age of the mirror and the last error."""
        age = None if self.last_ok is None else round(time.time() - self.last_ok, 1)
        return {"store": self.url, "synced_seconds_ago": age, "last_error": self.last_error}
