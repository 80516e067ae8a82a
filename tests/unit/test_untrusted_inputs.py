"""Inputs from sources are never executed or unpickled.

An AST scan of the product package (like ``test_layout.py`` does for imports)
finds every call that runs code or rebuilds objects from bytes: the pickle
family, ``eval``/``exec``, ``yaml.load`` without a safe loader, a shell. None may
appear in ``tasks/``, except the allowlisted loads of our own artifacts, each with
its reason. ENTSO-E XML (the one XML source) is parsed with DTDs and entities
refused: an entity bomb is quarantined, never expanded.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tasks.ingest import ingest_inbox
from tasks.sources import parse_file
from tasks.sources.base import ParseError

if TYPE_CHECKING:
    from tasks.config import Settings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit

#: Calls that run code or unpickle, by fully qualified name.
FORBIDDEN = {
    *(
        f"{mod}.{fn}"
        for mod in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
        for fn in ("load", "loads")
    ),
    "pickle.Unpickler",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "joblib.load",
    "pandas.read_pickle",
    "torch.load",
    "yaml.unsafe_load",
    "yaml.full_load",
    "yaml.load_all",
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.__import__",
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader"}
SUBPROCESS = {f"subprocess.{fn}" for fn in ("run", "call", "check_call", "check_output", "Popen")}

#: (file, call) -> why it is not a source input. Keep it short: each entry is a reviewed exception.
ALLOWED = {
    ("tasks/forecasting/served_model.py", "joblib.load"): (
        "the registered model's members, written by our own training run (tasks.train) and loaded "
        "back through the MLflow registry the pipeline controls; never a file from a source"
    ),
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name, from the module's imports (at any depth)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str | None:
    dotted = _dotted(node)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    if head in aliases:
        return aliases[head] + (f".{rest}" if rest else "")
    if not rest and head in {"eval", "exec", "compile", "__import__"}:
        return f"builtins.{head}"
    return dotted


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    """``shell=...``/``allow_pickle=...``: anything but a literal False (or absent) counts as on."""
    return node is not None and not (isinstance(node, ast.Constant) and node.value is False)


def dangerous_calls(path: Path, root: Path = REPO) -> list[tuple[str, str]]:
    """``(file, call)`` for every call in ``path`` that could run or unpickle its input."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = _aliases(tree)
    rel = path.relative_to(root).as_posix()
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, aliases)
        if name is None:
            continue
        if name in FORBIDDEN:
            found.append((rel, name))
        elif name == "yaml.load":
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _qualified(loader, aliases) not in SAFE_YAML_LOADERS:
                found.append((rel, "yaml.load without a safe Loader"))
        elif name in SUBPROCESS and _is_true(_keyword(node, "shell")):
            found.append((rel, f"{name}(shell=True)"))
        elif name == "numpy.load" and _is_true(_keyword(node, "allow_pickle")):
            found.append((rel, "numpy.load(allow_pickle=True)"))
    return found


def test_the_product_never_executes_or_unpickles_outside_the_allowlist() -> None:
    found = [hit for path in sorted((REPO / "tasks").rglob("*.py")) for hit in dangerous_calls(path)]
    assert [hit for hit in found if hit not in ALLOWED] == []
    assert sorted(set(ALLOWED) - set(found)) == [], "an allowlist entry matches nothing: remove it"


def test_source_modules_have_no_allowlisted_exception() -> None:
    source_modules = ("tasks/sources/", "tasks/ingest", "tasks/landing.py")
    assert not [f for f, _ in ALLOWED if f.startswith(source_modules)]


def test_the_scan_sees_each_kind_of_dangerous_call(tmp_path: Path) -> None:
    # The check above must be able to fail, whatever the import style.
    (tmp_path / "bad.py").write_text(
        "import pickle as pk\n"
        "import subprocess, yaml\n"
        "from dill import loads\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "def f(data, cmd, path):\n"
        "    pk.loads(data); loads(data); eval(data); exec(data)\n"
        "    yaml.load(data); yaml.load(data, Loader=yaml.FullLoader); yaml.unsafe_load(data)\n"
        "    subprocess.run(cmd, shell=True); np.load(path, allow_pickle=True); pd.read_pickle(path)\n"
    )
    (tmp_path / "good.py").write_text(
        "import json, subprocess, yaml\n"
        "import numpy as np\n"
        "def f(data, path):\n"
        "    json.loads(data); yaml.safe_load(data); yaml.load(data, Loader=yaml.SafeLoader)\n"
        "    subprocess.run(['ls', path], check=True); np.load(path); np.load(path, allow_pickle=False)\n"
    )
    assert [call for _, call in dangerous_calls(tmp_path / "bad.py", tmp_path)] == [
        "pickle.loads",
        "dill.loads",
        "builtins.eval",
        "builtins.exec",
        "yaml.load without a safe Loader",
        "yaml.load without a safe Loader",
        "yaml.unsafe_load",
        "subprocess.run(shell=True)",
        "numpy.load(allow_pickle=True)",
        "pandas.read_pickle",
    ]
    assert dangerous_calls(tmp_path / "good.py", tmp_path) == []


# ------------------------------------------------------------------ XML entity expansion

A44_NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"


def billion_laughs(*, padding: int = 0, encoding: str = "utf-8") -> bytes:
    """The classic entity bomb (10^9 'lol's if expanded), after ``padding`` bytes of comment."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    comment = f"<!--{'x' * padding}-->\n" if padding else ""
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{comment}<!DOCTYPE lolz [\n'
        + "\n".join(entities)
        + f']>\n<Publication_MarketDocument xmlns="{A44_NS}"><type>&lol9;</type></Publication_MarketDocument>'
    )
    return text.encode(encoding)


@pytest.mark.parametrize(
    "document",
    [
        billion_laughs(),
        billion_laughs(padding=8000),  # the declaration far from the start of the file
        billion_laughs(encoding="utf-16"),  # no ASCII bytes to search for
        # A small internal entity: no bomb, but a value the parser would substitute into the data.
        (
            f'<?xml version="1.0"?><!--{"x" * 5000}--><!DOCTYPE d [<!ENTITY p "53.2">]>'
            f'<Publication_MarketDocument xmlns="{A44_NS}"><type>&p;</type></Publication_MarketDocument>'
        ).encode(),
    ],
    ids=["plain", "after-padding", "utf-16", "substituted-value"],
)
def test_an_xml_entity_declaration_is_refused_before_expansion(document: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(ParseError) as info:
        parse_file("entsoe_A44_DE_LU_2026-06-09.xml", document)
    assert info.value.code == "malformed_xml"
    assert "declares a DTD or entities; refused" in info.value.message
    assert time.perf_counter() - start < 1.0, "nothing was expanded"


def test_ingest_quarantines_an_entity_bomb_with_its_reason(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    (settings.inbox / "entsoe_A44_DE_LU_2026-06-09.xml").write_bytes(billion_laughs(padding=8000))
    report = ingest_inbox(settings, run_day=None, history=True, workers=1)
    assert [(q["file"], q["reason"]) for q in report.quarantined] == [
        ("entsoe_A44_DE_LU_2026-06-09.xml", "malformed_xml")
    ]
    assert "declares a DTD or entities; refused" in report.quarantined[0]["message"]
    assert Path(report.quarantined[0]["path"]).is_file(), "the file is kept in quarantine for inspection"
