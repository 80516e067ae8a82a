"""Stage ``tasks.publish``: point ``schedules/day=D/latest`` at a checked schedule version.

``python -m tasks.publish --delivery-date D [--version v=NNN]`` (default: the
newest version) publishes only a version the schedule gate passed for every
zone it covers (``tasks.validate --dataset schedule`` records the version and
its manifest sha256), and refuses when the gate closed the day for any of its
zones (``gates/zone=Z/<D>.json``), when the manifest breaks
``schemas/manifest.v1.json`` or when a file no longer matches its checksum.

``LATEST`` (JSON: version, manifest sha256) is the authoritative pointer: it is
written to a temp file, fsynced and renamed. The ``latest`` symlink is derived
from it, replaced by rename after it, and repaired from it at every publish
and read, so a kill between the two renames leaves ``LATEST`` right and the
link one step behind until the next publish or read. An empty or corrupt
``LATEST`` is rewritten by the next publish; readers get a ``PointerError``
naming the command. Publishing holds the day's lock and first removes temp
files of killed publishes. Earlier versions stay.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import date
from pathlib import Path
from typing import Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import PROJECT_ROOT, Settings, get_settings
from tasks.errors import GateClosedError, MissingInputError, PointerError, ValidationFailed
from tasks.quality.gate import validated_schedule_versions
from tasks.schedule import VERSION_RE, existing_versions, version_name
from tasks.storage import Layout, atomic_path, day_lock, fsync_path, remove_leftovers, sha256_file

log = logging.getLogger("tasks.publish")

SCHEMA_DIR = PROJECT_ROOT / "schemas"
POINTER_FILE = "LATEST"
POINTER_LINK = "latest"


def load_schema(name: str) -> dict[str, Any]:
    """One of ``schedule.v1``, ``bids.v1``, ``manifest.v1``."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    return schema


def schema_errors(instance: object, name: str, limit: int = 5) -> list[str]:
    """Messages of the first ``limit`` violations of a JSON Schema (empty list: valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(name))
    out = []
    for err in validator.iter_errors(instance):
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        out.append(f"{where}: {err.message}")
        if len(out) >= limit:
            break
    return out


def check_version(version_dir: Path) -> dict[str, Any]:
    """Manifest valid and every file matches its recorded sha256; returns the manifest."""
    day = version_dir.parent.name
    path = version_dir / "manifest.json"
    if not path.exists():
        raise MissingInputError(f"{version_dir} has no manifest.json; it is not a complete schedule version")
    manifest: dict[str, Any] = json.loads(path.read_text())
    errors = schema_errors(manifest, "manifest.v1")
    if errors:
        raise ValidationFailed(
            f"manifest of {version_dir} breaks manifest.v1: {errors}", dataset="schedule", delivery_day=day
        )
    for name in sorted(
        manifest["files"]
    ):  # the schema requires the data files; older versions lack summary.html
        want = manifest["files"][name]["sha256"]
        file = version_dir / name
        got = sha256_file(file) if file.exists() else "missing"
        if got != want:
            raise ValidationFailed(
                f"{file} does not match its manifest checksum ({got[:12]} != {want[:12]}); rerun tasks.schedule",
                dataset="schedule",
                delivery_day=day,
            )
    return manifest


def read_pointer(day_dir: Path) -> str | None:
    """The version ``LATEST`` names, or None when the day was never published.

    Raises ``PointerError`` when ``LATEST`` is empty, not JSON, or names no version of the day.
    """
    path = day_dir / POINTER_FILE
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"is unreadable ({type(exc).__name__}: {exc})"
    else:
        if isinstance(value, str) and VERSION_RE.match(value) and (day_dir / value).is_dir():
            return value
        problem = f"names {value!r}, which is not a version of the day"
    day = day_dir.name.removeprefix("day=")
    raise PointerError(
        f"{path} {problem}; rewrite it by publishing a validated version: "
        f"python -m tasks.publish --delivery-date {day} [--version v=NNN]"
    )


def current_pointer(day_dir: Path) -> str | None:
    """The published version of a day (read from ``LATEST``), or None; repairs a stale ``latest`` link."""
    version = read_pointer(day_dir)
    if version is not None and _link_target(day_dir) != version:
        try:
            with day_lock(Layout(day_dir.parent.parent).schedule_lock(_day_of(day_dir))):
                version = read_pointer(day_dir)
                if version is not None:
                    _replace_symlink(day_dir / POINTER_LINK, version)
        except OSError as exc:  # a reader without write access still gets the right answer
            log.warning("could not repair %s: %s", day_dir / POINTER_LINK, exc)
    return version


def _day_of(day_dir: Path) -> date:
    return date.fromisoformat(day_dir.name.removeprefix("day="))


def _link_target(day_dir: Path) -> str | None:
    link = day_dir / POINTER_LINK
    return str(link.readlink()) if link.is_symlink() else None


def _replace_symlink(link: Path, target_name: str) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target_name, target_is_directory=True)
    tmp.replace(link)
    fsync_path(link.parent)


def _previous(day_dir: Path) -> str | None:
    """The published version before this publish; a corrupt ``LATEST`` falls back to the link."""
    try:
        return read_pointer(day_dir)
    except PointerError as exc:
        log.warning("%s; publishing rewrites it", exc)
        target = _link_target(day_dir)
        return target if target and VERSION_RE.match(target) and (day_dir / target).is_dir() else None


def _require_validated(layout: Layout, day: date, version_dir: Path, zones: list[str]) -> None:
    """Every zone of the version passed the schedule gate on exactly this manifest."""
    manifest_sha = sha256_file(version_dir / "manifest.json")
    missing = [
        z
        for z in zones
        if validated_schedule_versions(layout, z, day).get(version_dir.name, {}).get("manifest_sha256")
        != manifest_sha
    ]
    if missing:
        d = day.isoformat()
        commands = "; ".join(
            f"python -m tasks.validate --delivery-date {d} --zone {z} --dataset schedule --schedule-dir {version_dir}"
            for z in missing
        )
        raise ValidationFailed(
            f"schedule version {version_dir.name} of {d} has not passed the schedule gate for {missing} "
            f"(or changed since); not publishing. Validate it: {commands}; then publish again",
            dataset="schedule",
            delivery_day=d,
        )


def publish(day: date, settings: Settings, version: str | None = None) -> dict[str, Any]:
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(day)
    versions = existing_versions(day_dir)
    if not versions:
        raise MissingInputError(f"no schedule version for {day} under {day_dir}; run tasks.schedule first")
    with day_lock(layout.schedule_lock(day)):
        removed = remove_leftovers(day_dir)
        if removed:
            log.warning("removed leftovers of killed runs in %s: %s", day_dir, removed)
        return _publish_locked(layout, day, day_dir, version or version_name(versions[-1]))


def _publish_locked(layout: Layout, day: date, day_dir: Path, name: str) -> dict[str, Any]:
    previous = _previous(day_dir)
    if previous is not None and _link_target(day_dir) != previous:
        _replace_symlink(day_dir / POINTER_LINK, previous)  # a publish killed between the two renames
    if not VERSION_RE.match(name) or not (day_dir / name).is_dir():
        raise MissingInputError(
            f"schedule version {name!r} of {day} not found; "
            f"have {[version_name(v) for v in existing_versions(day_dir)]}"
        )
    version_dir = day_dir / name
    manifest = check_version(version_dir)
    closed = [z for z in manifest["zones"] if layout.gate_file(z, day).exists()]
    if closed:
        raise GateClosedError(
            f"schedule of {day} failed its gate for {closed} (see {layout.gate_file(closed[0], day)}); "
            "not publishing — fix the inputs and rerun tasks.schedule and tasks.validate"
        )
    _require_validated(layout, day, version_dir, list(manifest["zones"]))
    pointer = {
        "version": name,
        "manifest_sha256": sha256_file(version_dir / "manifest.json"),
        "delivery_date": day.isoformat(),
    }
    with atomic_path(day_dir / POINTER_FILE) as tmp:
        tmp.write_text(json.dumps(pointer, indent=2, sort_keys=True) + "\n")
        tmp.chmod(0o644)  # readers are other users (schedulers' tools); mkstemp makes it 0600
    _replace_symlink(day_dir / POINTER_LINK, name)
    return {
        "published": True,
        "version": name,
        "previous": previous,
        "version_dir": str(version_dir),
        "pointer": str(day_dir / POINTER_FILE),
        "fallback": manifest.get("fallback"),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    return publish(day_arg(args), get_settings(), args.version)


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("Publish a checked schedule version as the day's latest.", zone=False)
    parser.add_argument(
        "--version", default=None, help="Version directory name, e.g. v=002 (default: newest)."
    )
    return parser


if __name__ == "__main__":
    exit_stage(run_stage(main, build_parser()))
