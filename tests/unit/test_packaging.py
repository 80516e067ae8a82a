"""The pod image, the chart and the requirements stay consistent with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tasks.config import Settings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def test_image_installs_the_tested_lock() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "uv pip install --no-cache -r requirements.lock --override overrides.txt" in dockerfile
    assert "bookworm" in dockerfile  # the glibc the lock was resolved and tested for
    for folder in ("tasks/", "config/", "expectations/", "mlruns_config/"):
        assert f"COPY {folder}" in dockerfile


def test_runtime_lock_is_a_subset_of_the_dev_lock() -> None:
    def pins(name: str) -> dict[str, str]:
        text = (REPO / name).read_text()
        return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, flags=re.MULTILINE))

    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert runtime, "requirements.lock has no pins"
    differing = {k: (v, dev.get(k)) for k, v in runtime.items() if dev.get(k) != v}
    assert differing == {}, f"pod image and tests would run different versions: {differing}"


def test_every_pin_or_cap_has_a_reason() -> None:
    for name in ("requirements.in", "requirements-dev.in"):
        for line in (REPO / name).read_text().splitlines():
            spec = line.split("#", 1)[0].strip()
            if spec and not spec.startswith("-r") and re.search(r"==|<|~=", spec):
                assert "#" in line, f"{name}: '{spec}' pins or caps a version without a reason"


def test_chart_settings_map_one_to_one_onto_settings() -> None:
    values = yaml.safe_load((REPO / "charts" / "day-ahead" / "values.yaml").read_text())
    unknown = set(values["settings"]) - set(Settings.model_fields)
    assert unknown == set(), f"chart values that no setting reads: {unknown}"
