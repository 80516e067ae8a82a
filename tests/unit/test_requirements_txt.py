"""requirements.txt (plain pip) pins exactly the runtime lock, with full tensorflow for tensorflow-cpu."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "plain_pip_requirements", REPO / "tools" / "plain_pip_requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._\-\[\]]*)==(\S+)", text, flags=re.MULTILINE))


def test_requirements_txt_is_in_sync_with_the_lock() -> None:
    assert (REPO / "requirements.txt").read_text() == _tool().expected(), (
        "requirements.txt is out of date with requirements.lock: run `make lock`"
    )


def test_requirements_txt_pins_every_locked_package() -> None:
    lock = _pins((REPO / "requirements.lock").read_text())
    plain = _pins((REPO / "requirements.txt").read_text())
    assert "tensorflow-cpu" not in plain, "pip would install tensorflow beside tensorflow-cpu"
    assert plain.pop("tensorflow") == lock.pop("tensorflow-cpu")
    assert plain == lock


def test_a_changed_lock_is_detected() -> None:
    tool = _tool()
    lock = (REPO / "requirements.lock").read_text()
    overrides = (REPO / "overrides.txt").read_text()
    bumped = re.sub(r"^(absl-py)==\S+", r"\1==99.0", lock, flags=re.MULTILINE)
    assert bumped != lock
    assert tool.render(bumped, overrides) != (REPO / "requirements.txt").read_text()


def test_an_override_pip_cannot_express_is_refused() -> None:
    with pytest.raises(ValueError, match="pip cannot express"):
        _tool().render("numpy==1.26.4\n", "numpy==2.0\n")
