"""Stage ``tasks.publish``: point ``schedules/day=D/latest`` at a checked schedule version.

``python -m tasks.publish --delivery-date D [--version v=NNN]`` (default: the
newest version) refuses to publish when the schedule gate closed the day for
any of its zones (``gates/zone=Z/<D>.json``), when the manifest breaks
``schemas/manifest.v1.json`` or when a file no longer matches its checksum.
Then it moves the pointer atomically: ``LATEST`` (JSON: version, manifest
sha256) is written to a temp file and renamed, and the ``latest`` symlink is
created under a temp name and renamed over the old one. Earlier versions stay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from tasks.cli import base_parser, day_arg, run_stage
from tasks.config import PROJECT_ROOT, Settings, get_settings
from tasks.errors import GateClosedError, MissingInputError, ValidationFailed
from tasks.schedule import SCHEDULE_FILES, VERSION_RE, existing_versions, version_name
from tasks.storage import Layout, atomic_path, sha256_file

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
    for name in SCHEDULE_FILES:
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


def current_pointer(day_dir: Path) -> str | None:
    """The published version name of a day, or None."""
    path = day_dir / POINTER_FILE
    if not path.exists():
        return None
    value: str = json.loads(path.read_text())["version"]
    return value


def _replace_symlink(link: Path, target_name: str) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target_name, target_is_directory=True)
    tmp.replace(link)


def publish(day: date, settings: Settings, version: str | None = None) -> dict[str, Any]:
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(day)
    versions = existing_versions(day_dir)
    if not versions:
        raise MissingInputError(f"no schedule version for {day} under {day_dir}; run tasks.schedule first")
    name = version or version_name(versions[-1])
    if not VERSION_RE.match(name) or not (day_dir / name).is_dir():
        raise MissingInputError(
            f"schedule version {name!r} of {day} not found; have {[version_name(v) for v in versions]}"
        )
    version_dir = day_dir / name
    manifest = check_version(version_dir)
    closed = [z for z in manifest["zones"] if layout.gate_file(z, day).exists()]
    if closed:
        raise GateClosedError(
            f"schedule of {day} failed its gate for {closed} (see {layout.gate_file(closed[0], day)}); "
            "not publishing — fix the inputs and rerun tasks.schedule and tasks.validate"
        )
    previous = current_pointer(day_dir)
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
    sys.exit(run_stage(main, build_parser()))
