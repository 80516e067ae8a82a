"""Landing zone: immutable revisions with provenance; quarantine keeps bytes and reasons."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from tasks.landing import (
    Landed,
    Quarantined,
    land_raw,
    list_quarantine,
    list_revisions,
    quarantine_file,
    read_provenance,
    received_time_of,
)
from tasks.storage import Layout, sha256_bytes

pytestmark = pytest.mark.unit

DAY = date(2026, 10, 25)
NAME = "entsoe_A44_DE_LU_2026-10-25.xml"


def _land(layout: Layout, data: bytes) -> Landed:
    return land_raw(
        layout,
        source="entsoe_A44",
        zone="DE_LU",
        day=DAY,
        name=NAME,
        data=data,
        received_time="2026-10-24T11:05:00+00:00",
        parser_version="1",
        datasets=("day_ahead_prices",),
        run_day=date(2026, 10, 26),
    )


def test_same_bytes_land_once(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = _land(layout, b"<doc>1</doc>")
    again = _land(layout, b"<doc>1</doc>")

    assert first.new
    assert not again.new
    assert again.path == first.path
    assert first.path.name == "entsoe_A44_DE_LU_2026-10-25.r001.xml"
    assert first.path.parent == tmp_path / "raw" / "entsoe_A44" / "zone=DE_LU" / "day=2026-10-25"
    assert sorted(p.name for p in first.path.parent.iterdir()) == [
        "entsoe_A44_DE_LU_2026-10-25.r001.xml",
        "entsoe_A44_DE_LU_2026-10-25.r001.xml.provenance.json",
    ]


def test_changed_bytes_become_a_new_revision_never_an_overwrite(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    r1 = _land(layout, b"<doc>1</doc>")
    r2 = _land(layout, b"<doc>2</doc>")
    r3 = _land(layout, b"<doc>1</doc>")  # back to the first content: still a new publication

    assert [r1.revision, r2.revision, r3.revision] == [1, 2, 3]
    assert r1.path.read_bytes() == b"<doc>1</doc>"
    assert r2.path.read_bytes() == b"<doc>2</doc>"
    assert [rev for rev, _ in list_revisions(r1.path.parent, NAME)] == [1, 2, 3]
    assert (r1.path.stat().st_mode & 0o222) == 0  # landed read-only


def test_provenance_record(tmp_path: Path) -> None:
    landed = _land(Layout(tmp_path), b"<doc>1</doc>")
    prov = read_provenance(landed.path)
    assert prov == {
        "source": "entsoe_A44",
        "zone": "DE_LU",
        "day": "2026-10-25",
        "original_name": NAME,
        "received_time": "2026-10-24T11:05:00+00:00",
        "sha256": sha256_bytes(b"<doc>1</doc>"),
        "size": 12,
        "parser_version": "1",
        "revision": 1,
        "datasets": ["day_ahead_prices"],
        "run_day": "2026-10-26",
        "meta": {},
    }


def test_crash_between_bytes_and_sidecar_is_completed_not_duplicated(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    landed = _land(layout, b"<doc>1</doc>")
    landed.provenance_path.unlink()  # as if the process died after the bytes
    again = _land(layout, b"<doc>1</doc>")
    assert again.revision == 1
    assert again.provenance_path.exists()


def test_other_names_in_the_same_day_are_not_revisions(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    landed = _land(layout, b"x")
    (landed.path.parent / "entsoe_A44_DE_LU_2026-10-25_extra.r001.xml").write_bytes(b"y")
    assert [rev for rev, _ in list_revisions(landed.path.parent, NAME)] == [1]


def test_quarantine_keeps_bytes_and_reason(tmp_path: Path) -> None:
    layout = Layout(tmp_path)

    def put() -> Quarantined:
        return quarantine_file(
            layout,
            source="entsoe_A65",
            day=DAY,
            name="entsoe_A65_DE_LU_2026-10-25_A01.xml",
            data=b"<trunc",
            reason="malformed_xml",
            message="XML ends early at line 1",
            severity="error",
            received_time="2026-10-24T09:00:00+00:00",
            zone="DE_LU",
        )

    q1 = put()
    q2 = put()  # idempotent per content

    assert q1.path == q2.path
    assert q1.path.read_bytes() == b"<trunc"
    assert q1.path.parent == tmp_path / "quarantine" / "entsoe_A65" / "day=2026-10-25"
    record = json.loads(q1.reason_path.read_text())
    assert record["reason"] == "malformed_xml"
    assert record["severity"] == "error"
    assert record["sha256"] == sha256_bytes(b"<trunc")
    assert list_quarantine(layout) == [record]


def test_quarantine_without_a_day(tmp_path: Path) -> None:
    q = quarantine_file(
        Layout(tmp_path),
        source="unknown",
        day=None,
        name="notes.txt",
        data=b"hello",
        reason="unknown_format",
        message="no parser for notes.txt",
        severity="error",
        received_time="2026-10-24T09:00:00+00:00",
    )
    assert q.path.parent.name == "day=unknown"


def test_received_time_is_the_file_mtime_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.utime(path, (1_790_000_000, 1_790_000_000))
    assert received_time_of(path) == "2026-09-21T14:13:20+00:00"
