"""A thin Airflow hook over nipyapi 1.8 (NiFi 2.x REST API) with retries.

The connection (``nifi_default``) gives ``host``, ``port``, ``schema``
(``http``/``https``), optional ``login``/``password`` (single-user or LDAP
token login over HTTPS) and extras: ``base_path`` (default ``/nifi-api``),
``verify_ssl`` (default true), ``ca_file``, ``retries`` (default 4),
``backoff_s`` (first retry wait, doubled each time, default 2).

Connection errors (refused, reset, DNS, TLS, HTTP 502/503/504) are retried
with exponential backoff, then raised as ``tasks.errors.NiFiError`` with the
URL and what to check. Other API errors (e.g. 409 conflict) are raised at
once as NiFiError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from airflow.sdk import BaseHook

from tasks.errors import NiFiError

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_STATUS = {0, 502, 503, 504}


@dataclass(frozen=True)
class FlowStatus:
    """Aggregate status of a process group (NiFi ``aggregateSnapshot``)."""

    process_group_id: str
    name: str
    flow_files_queued: int
    bytes_queued: int
    active_threads: int
    flow_files_in: int
    flow_files_out: int
    running: int
    stopped: int
    invalid: int

    @property
    def drained(self) -> bool:
        return self.flow_files_queued == 0 and self.active_threads == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "process_group_id": self.process_group_id,
            "name": self.name,
            "flow_files_queued": self.flow_files_queued,
            "bytes_queued": self.bytes_queued,
            "active_threads": self.active_threads,
            "flow_files_in": self.flow_files_in,
            "flow_files_out": self.flow_files_out,
            "running_components": self.running,
            "stopped_components": self.stopped,
            "invalid_components": self.invalid,
        }


def _is_transient(exc: BaseException) -> bool:
    """Connection-level failures worth retrying; nipyapi wraps ApiException in ValueError."""
    import urllib3
    from nipyapi.nifi.rest import ApiException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            return True
        if isinstance(seen, ApiException) and (seen.status or 0) in _TRANSIENT_STATUS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class NiFiHook(BaseHook):
    """Talk to one NiFi 2.x instance through nipyapi's global client configuration."""

    conn_name_attr = "nifi_conn_id"
    default_conn_name = "nifi_default"
    conn_type = "http"
    hook_name = "Apache NiFi (nipyapi)"

    def __init__(self, nifi_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nifi_conn_id = nifi_conn_id
        self.url = ""
        self.retries = 4
        self.backoff_s = 2.0
        self._configured = False

    # ------------------------------------------------------------------ setup

    def configure(self) -> str:
        """Point nipyapi at the connection's NiFi API (at execute time, never at parse time)."""
        if self._configured:
            return self.url
        import nipyapi

        conn = self.get_connection(self.nifi_conn_id)
        extra = conn.extra_dejson
        scheme = (conn.schema or "http").lower()
        if scheme not in ("http", "https"):
            scheme = "https" if conn.port == 8443 else "http"
        host = conn.host or "localhost"
        if "://" in host:
            scheme, host = host.split("://", 1)
        port = f":{conn.port}" if conn.port else ""
        base_path = "/" + str(extra.get("base_path", "/nifi-api")).strip("/")
        self.url = f"{scheme}://{host.rstrip('/')}{port}{base_path}"
        self.retries = int(extra.get("retries", self.retries))
        self.backoff_s = float(extra.get("backoff_s", self.backoff_s))
        config = nipyapi.config.nifi_config
        # nipyapi's configuration is process-global: set every field, so nothing of
        # an earlier connection (CA file, bearer token) leaks into this one.
        config.verify_ssl = bool(extra.get("verify_ssl", True))
        config.ssl_ca_cert = str(extra["ca_file"]) if extra.get("ca_file") else None
        nipyapi.security.set_service_auth_token(token=None, service="nifi")
        https = scheme == "https"
        self._call(
            "connect",
            nipyapi.utils.set_endpoint,
            self.url,
            ssl=https,
            login=bool(conn.login) and https,
            username=conn.login or None,
            password=conn.password or None,
        )
        self._configured = True
        return self.url

    def _call(self, what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one nipyapi call; retry connection errors with backoff, then NiFiError."""
        delay = self.backoff_s
        for attempt in range(1, self.retries + 2):
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                if not _is_transient(exc):
                    raise NiFiError(f"NiFi at {self.url or self.nifi_conn_id}: {what} failed: {exc}") from exc
                if attempt > self.retries:
                    raise NiFiError(
                        f"NiFi at {self.url or self.nifi_conn_id} unreachable: {what} failed after "
                        f"{attempt} attempts ({type(exc).__name__}: {str(exc)[:200]}). Check that NiFi is "
                        f"up and the Airflow connection {self.nifi_conn_id!r} (host, port, scheme, TLS)."
                    ) from exc
                log.warning("NiFi %s: attempt %d failed (%s); retrying in %.1fs", what, attempt, exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ process groups

    def find_process_group(self, name: str) -> Any | None:
        """The process group with exactly this name, or None; NiFiError if ambiguous."""
        import nipyapi

        self.configure()
        found = self._call(
            f"find process group {name!r}", nipyapi.canvas.get_process_group, name, "name", greedy=False
        )
        if isinstance(found, list):
            if len(found) > 1:
                ids = ", ".join(pg.id for pg in found)
                raise NiFiError(
                    f"{len(found)} NiFi process groups are named {name!r} ({ids}); rename or remove all but one"
                )
            found = found[0] if found else None
        return found

    def deploy_process_group(self, flow_definition: Path, parent_id: str = "root") -> Any:
        """Upload a NiFi 2.x flow definition JSON as a new process group under ``parent_id``."""
        import nipyapi

        self.configure()
        if not flow_definition.is_file():
            raise NiFiError(
                f"flow definition {flow_definition} not found; it ships in the repository's nifi/ folder"
            )
        text = flow_definition.read_text()
        parent = self._call("get parent process group", nipyapi.canvas.get_process_group, parent_id, "id")
        if parent is None:
            raise NiFiError(f"parent process group {parent_id!r} not found in NiFi at {self.url}")
        return self._call(
            f"upload {flow_definition.name}",
            nipyapi.versioning.import_process_group_definition,
            parent,
            flow_definition=text,
            position=(0, 0),
        )

    def ensure_process_group(self, name: str, flow_definition: Path | None) -> tuple[Any, bool]:
        """Locate the process group, or deploy it from ``flow_definition``; ``(entity, deployed)``."""
        found = self.find_process_group(name)
        if found is not None:
            return found, False
        if flow_definition is None:
            raise NiFiError(
                f"NiFi process group {name!r} not found at {self.url} and no flow definition to deploy; "
                "import nifi/day_ahead_ingest.json or set deploy_if_missing"
            )
        deployed = self.deploy_process_group(flow_definition)
        if deployed.component.name != name:
            raise NiFiError(
                f"deployed flow is named {deployed.component.name!r}, expected {name!r}; "
                "set Settings.nifi_process_group to the flow's name"
            )
        return deployed, True

    def set_parameters(self, pg_id: str, values: dict[str, str]) -> str:
        """Set (non-sensitive) parameters of the context bound to the group in one update; its name.

        NiFi applies a context update by stopping the components that reference the
        changed parameters and restarting them; the group is still stopped here, so
        the values are in place before anything runs.
        """
        import nipyapi

        self.configure()
        context = self._call(
            f"parameter context of process group {pg_id}",
            nipyapi.parameters.get_process_group_parameter_context,
            pg_id,
            identifier_type="id",
        )
        if context is None:
            raise NiFiError(
                f"NiFi process group {pg_id} has no parameter context; bind the context of "
                "nifi/day_ahead_ingest.json (day-ahead-ingest) to it"
            )
        known = {p.parameter.name for p in context.component.parameters or []}
        missing = sorted(set(values) - known)
        if missing:
            raise NiFiError(
                f"NiFi parameter context {context.component.name!r} lacks {', '.join(missing)}; "
                "re-import nifi/day_ahead_ingest.json (the flow in NiFi is older than the operator)"
            )
        context.component.parameters = [
            nipyapi.parameters.prepare_parameter(name, value) for name, value in sorted(values.items())
        ]
        self._call(
            f"update parameter context {context.component.name!r}",
            nipyapi.parameters.update_parameter_context,
            context,
        )
        return str(context.component.name)

    def schedule(self, pg_id: str, running: bool) -> bool:
        import nipyapi

        self.configure()
        state = "start" if running else "stop"
        ok = self._call(
            f"{state} process group {pg_id}",
            nipyapi.canvas.schedule_process_group,
            pg_id,
            running,
            identifier_type="id",
        )
        return bool(ok)

    def status(self, pg_id: str) -> FlowStatus:
        import nipyapi

        self.configure()
        entity = self._call(
            f"status of process group {pg_id}", nipyapi.canvas.get_process_group_status, pg_id, detail="all"
        )
        snap = entity.status.aggregate_snapshot
        return FlowStatus(
            process_group_id=entity.id,
            name=entity.component.name if entity.component else "",
            flow_files_queued=int(snap.flow_files_queued or 0),
            bytes_queued=int(snap.bytes_queued or 0),
            active_threads=int(snap.active_thread_count or 0),
            flow_files_in=int(snap.flow_files_in or 0),
            flow_files_out=int(snap.flow_files_out or 0),
            running=int(entity.running_count or 0),
            stopped=int(entity.stopped_count or 0),
            invalid=int(entity.invalid_count or 0),
        )
