"""The data root on an S3-compatible object store: mirrored around each stage.

With ``DAP_DATA_URL=s3://bucket/prefix`` every stage (``tasks.cli.run_stage``)
works on a local mirror at ``DAP_DATA_ROOT`` (an ``emptyDir`` in a pod, a cache
directory on a worker): before the stage, objects that changed in the store are
downloaded (:func:`pull`); after it, files the stage wrote are uploaded and
files it removed are deleted (:func:`push`): a schedule version's files first,
its ``manifest.json`` next, the day's ``LATEST`` pointer last, so a reader of the
store never sees a pointer before the version it names, and a version cut off
mid-upload has no manifest (the next writer of the day removes it). A
stage killed before it ends pushes nothing: the store never holds its partial
output, and its retry starts from the store's state. Every file is written
locally by an atomic rename, so whatever is pushed is complete.

The endpoint and credentials are the standard AWS ones, from the environment or
a Kubernetes Secret (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``), never from settings. An unreachable store is a
:class:`~tasks.errors.ServiceUnavailable` naming the endpoint (exit 75, retried).

What stays local: lock files, temporary files (``.*.tmp``, ``.staging-*``) and
the ``latest`` symlink (readers use ``LATEST``; publish repairs the link).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tasks.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from tasks.config import Settings

log = logging.getLogger(__name__)

INDEX_FILE = ".objectstore-index.json"
#: Written after the other files of a push, in this order: a version's manifest marks it complete
#: (a version without one is a leftover, tasks.storage.is_leftover), LATEST points at a complete one.
LAST_NAMES = ("manifest.json", "LATEST")
TRANSFER_THREADS = 8


@dataclass(frozen=True)
class StoreUrl:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"DAP_DATA_URL={url!r} is not s3://bucket[/prefix]; fix it or leave it empty")
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"))

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key


def is_local_only(rel: str) -> bool:
    """Files that never go to the store: locks, temporaries, the index itself."""
    parts = rel.split("/")
    name = parts[-1]
    return (
        rel == INDEX_FILE
        or name.endswith((".lock", ".tmp"))
        or any(p.startswith(".staging-") for p in parts)
        or (name.startswith(".") and ".tmp" in name)
    )


def local_files(root: Path) -> dict[str, os.stat_result]:
    """Regular files under ``root`` (no symlinks) that belong in the store, by relative path."""
    out: dict[str, os.stat_result] = {}
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".staging-")]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            if not is_local_only(rel):
                out[rel] = path.stat()
    return out


def unchanged(entry: dict[str, Any] | None, st: os.stat_result) -> bool:
    if not entry:
        return False
    return bool(entry["size"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns)


def in_folders(rel: str, folders: tuple[str, ...]) -> bool:
    """Whether ``rel`` lies in one of ``folders`` (``""``: the whole prefix)."""
    return any(not f or rel.startswith(f.rstrip("/") + "/") for f in folders)


def push_order(rels: list[str]) -> list[list[str]]:
    """Upload batches: data files first, then manifests, then the LATEST pointers (pure)."""
    batches = [sorted(r for r in rels if r.rsplit("/", 1)[-1] == name) for name in LAST_NAMES]
    return [sorted(set(rels).difference(*batches)), *batches]


class ObjectStore:
    """A bucket prefix mirrored to a local directory."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = StoreUrl.parse(url)
        self.root = root
        self.endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the default AWS S3 endpoint"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30
            )
            # A session of its own: boto3's default session caches the credentials it first saw.
            self._client = boto3.session.Session().client("s3", config=config)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn(*args, **kwargs)
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise ServiceUnavailable(
                f"object store {self.endpoint} unreachable while {what} s3://{self.url.bucket}/{self.url.prefix}: "
                f"{exc}; check the server (AWS_ENDPOINT_URL) — the task retries"
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigError(
                    f"object store {self.endpoint} refused {what} s3://{self.url.bucket} ({code}); "
                    "check DAP_DATA_URL and the AWS_* credentials"
                ) from exc
            raise ServiceUnavailable(f"object store {self.endpoint} failed {what}: {exc}") from exc

    # --- index of what the mirror last saw in the store ---------------------
    def load_index(self) -> dict[str, dict[str, Any]]:
        try:
            data: dict[str, dict[str, Any]] = json.loads((self.root / INDEX_FILE).read_text())
            return data
        except (OSError, ValueError):
            return {}

    def save_index(self, index: dict[str, dict[str, Any]]) -> None:
        from tasks.storage import atomic_path

        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.root / INDEX_FILE) as tmp:
            tmp.write_text(json.dumps(index, sort_keys=True))

    def remote(self, only: tuple[str, ...] = ("",)) -> dict[str, dict[str, Any]]:
        """Objects under the prefix (or its folders ``only``): relative path -> {etag, size}."""
        out: dict[str, dict[str, Any]] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        base = f"{self.url.prefix}/" if self.url.prefix else ""
        for folder in only:
            prefix = base + (folder.rstrip("/") + "/" if folder else "")
            pages = self._call(
                "listing", lambda p=prefix: list(paginator.paginate(Bucket=self.url.bucket, Prefix=p))
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    out[self.url.rel(obj["Key"])] = {"etag": obj["ETag"], "size": obj["Size"]}
        return out

    # --- transfers -------------------------------------------------------------
    def pull(self, only: tuple[str, ...] = ("",)) -> dict[str, int]:
        """Bring the mirror up to the store: download changed objects, drop objects deleted there.

        ``only``: the folders to mirror (default: all). Downloads go in :func:`push_order`, so
        a reader of the mirror meets a ``LATEST`` only after the version it names is complete.
        """
        index, remote = self.load_index(), self.remote(only)
        files = local_files(self.root)
        fetch = [
            rel
            for rel, obj in remote.items()
            if not (
                rel in files
                and rel in index
                and index[rel]["etag"] == obj["etag"]
                and unchanged(index[rel], files[rel])
            )
        ]
        stale = [rel for rel in index if rel not in remote and in_folders(rel, only)]
        gone = [rel for rel in stale if rel in files]
        for batch in push_order(fetch):
            self._parallel(self._download, batch, remote, index)
        for rel in gone:
            (self.root / rel).unlink(missing_ok=True)
        for rel in stale:
            index.pop(rel, None)
        self.save_index(index)
        return {"downloaded": len(fetch), "removed": len(gone), "objects": len(remote)}

    def push(self) -> dict[str, int]:
        """Upload what changed in the mirror since the pull; delete what the stage removed."""
        index, files = self.load_index(), local_files(self.root)
        changed = [rel for rel, st in files.items() if not unchanged(index.get(rel), st)]
        for batch in push_order(changed):
            self._parallel(self._upload, batch, {}, index)
        removed = [rel for rel in index if rel not in files]
        for rel in removed:
            self._call(
                "deleting from", self.client.delete_object, Bucket=self.url.bucket, Key=self.url.key(rel)
            )
            index.pop(rel)
        self.save_index(index)
        return {"uploaded": len(changed), "deleted": len(removed)}

    def _parallel(self, fn: Any, rels: list[str], remote: dict[str, Any], index: dict[str, Any]) -> None:
        if not rels:
            return
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            for rel, entry in zip(rels, pool.map(lambda r: fn(r, remote.get(r)), rels), strict=True):
                index[rel] = entry

    def _download(self, rel: str, obj: dict[str, Any] | None) -> dict[str, Any]:
        from tasks.storage import atomic_path

        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            self._call(
                "downloading from", self.client.download_file, self.url.bucket, self.url.key(rel), str(tmp)
            )
        st = path.stat()
        etag = obj["etag"] if obj else ""
        return {"etag": etag, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def _upload(self, rel: str, _obj: dict[str, Any] | None) -> dict[str, Any]:
        path = self.root / rel
        st = path.stat()
        with path.open("rb") as fh:
            response = self._call(
                "uploading to", self.client.put_object, Bucket=self.url.bucket, Key=self.url.key(rel), Body=fh
            )
        return {"etag": response["ETag"], "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@contextmanager
def mirrored(settings: Settings) -> Iterator[ObjectStore | None]:
    """Pull the data root before the block and push it after (also after a PipelineError:
    quarantined files and gate markers are results too). Without ``data_url``: nothing."""
    if not settings.data_url:
        yield None
        return
    store = ObjectStore(settings.data_url, settings.data_root)
    pulled = store.pull()
    log.info("object store %s: pulled %s", settings.data_url, pulled)
    from tasks.errors import PipelineError

    try:
        yield store
    except PipelineError:
        log.info("object store %s: pushed %s (after a pipeline error)", settings.data_url, store.push())
        raise
    log.info("object store %s: pushed %s", settings.data_url, store.push())
