"""tools/audit.py: a vulnerability audit that cannot pass by not looking."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit

REPORT: dict[str, Any] = {
    "dependencies": [
        {
            "name": "pyarrow",
            "version": "10.0.1",
            "vulns": [
                {"id": "PYSEC-2023-238", "aliases": ["CVE-2023-47248"], "fix_versions": ["14.0.1"]},
            ],
        },
        {"name": "requests", "version": "2.34.2", "vulns": []},
        {"name": "a2wsgi", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ]
}


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_tool", REPO / "tools" / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_names_package_version_advisory_and_fix() -> None:
    findings, skipped, total = _tool().summarise(REPORT)
    assert findings == ["pyarrow 10.0.1: PYSEC-2023-238, CVE-2023-47248; fixed in 14.0.1"]
    assert skipped == ["a2wsgi"]
    assert total == 3


@pytest.mark.parametrize(
    ("report", "code"),
    [
        (REPORT, 1),  # a known vulnerability
        ({"dependencies": [REPORT["dependencies"][1], REPORT["dependencies"][2]]}, 3),  # one not audited
        ({"dependencies": [REPORT["dependencies"][1]]}, 0),
        (None, 3),  # the service could not be reached at all
    ],
)
def test_exit_code_never_passes_an_unaudited_package(
    report: dict[str, Any] | None, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = _tool()
    monkeypatch.setattr(tool, "run_pip_audit", lambda requirements, service: report)
    assert tool.main([]) == code
