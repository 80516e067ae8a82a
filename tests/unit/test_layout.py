"""The product package stays apart from the lab: tasks/ never imports research/ or devtools/.

``tasks`` is what production runs and what the task image ships; the research
tooling (backtests, experiments) and the development tooling (simulator, demo,
bootstrap) import the product, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit

LAB = ("research", "devtools")


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def lab_imports(package: Path) -> list[str]:
    """``file: module`` for every import of a research or development package under ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for name in sorted(_imported_top_levels(path) & set(LAB)):
            found.append(f"{path.relative_to(package.parent)}: {name}")
    return found


def test_the_product_never_imports_research_or_devtools() -> None:
    assert lab_imports(REPO / "tasks") == []


def test_the_check_sees_a_lab_import(tmp_path: Path) -> None:
    # The check above must be able to fail: a product module importing the simulator is caught,
    # whether at top level or inside a function.
    package = tmp_path / "tasks"
    package.mkdir()
    (package / "ingest.py").write_text(
        "import json\n\ndef f():\n    from devtools.simulator import fill_inbox\n"
    )
    (package / "train.py").write_text("from research import backtest\n")
    assert lab_imports(package) == ["tasks/ingest.py: devtools", "tasks/train.py: research"]


def test_no_lab_module_is_left_in_the_product() -> None:
    left = [
        str(p.relative_to(REPO))
        for pattern in ("backtest*.py", "demo.py", "bootstrap.py", "simulator")
        for p in (REPO / "tasks").rglob(pattern)
    ]
    assert left == []


def test_the_task_image_leaves_the_lab_out() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for lab in LAB:
        assert f"COPY {lab}" not in dockerfile
        assert lab in ignored, f"{lab}/ would be in the image's build context"
    assert {".venv", "var", ".git"} <= ignored
