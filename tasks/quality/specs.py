"""Suite definitions, physical limits and severities kept in ``expectations/``.

Suites are JSON so they are reviewed and versioned like code, and so one
definition drives both the GX run and the docs. A spec is resolved per run:
``$param`` strings take the day's values (expected rows from the DST-aware
MTU grid, SDAC limits, zone capacities), ``{suite}``/``{column}`` expand names.
Standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from tasks.config import PROJECT_ROOT
from tasks.errors import ConfigError

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
SUITES_DIR = EXPECTATIONS_DIR / "suites"
Severity = Literal["fail", "warn"]
_PARAM = re.compile(r"^\$([a-z_][a-z0-9_]*)$")


@dataclass(frozen=True)
class ExpectationSpec:
    """One resolved expectation: a stable name, a GX type, its kwargs and severity."""

    name: str
    type: str
    kwargs: dict[str, Any]
    severity: Severity = "fail"
    why: str = ""

    @property
    def gx_class_name(self) -> str:
        return "".join(part.capitalize() for part in self.type.split("_"))


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    description: str
    expectations: tuple[ExpectationSpec, ...] = field(default_factory=tuple)

    def names(self) -> list[str]:
        return [e.name for e in self.expectations]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"quality config {path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"quality config {path} is not valid JSON: {exc}") from exc
    return data


@lru_cache(maxsize=64)
def _raw_suite(name: str, suites_dir: Path = SUITES_DIR) -> dict[str, Any]:
    return _read_json(suites_dir / f"{name}.json")


def suite_names(suites_dir: Path = SUITES_DIR) -> list[str]:
    """Suites defined in the repo (templates starting with ``_`` excluded)."""
    return sorted(p.stem for p in suites_dir.glob("*.json") if not p.stem.startswith("_"))


def _substitute(value: Any, params: dict[str, Any], names: dict[str, str]) -> Any:
    if isinstance(value, str):
        match = _PARAM.match(value)
        if match:
            key = match.group(1)
            if key not in params:
                raise ConfigError(f"suite parameter ${key} has no value for this run")
            return params[key]
        return value.format(**names) if "{" in value else value
    if isinstance(value, list):
        return [_substitute(v, params, names) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, params, names) for k, v in value.items()}
    return value


def resolve_suite(
    name: str,
    params: dict[str, Any],
    severities: dict[str, Severity] | None = None,
    *,
    suites_dir: Path = SUITES_DIR,
) -> SuiteSpec:
    """Expand a suite file (and its includes) into concrete expectations for one run."""
    raw = _raw_suite(name, suites_dir)
    entries: list[dict[str, Any]] = []
    for include in raw.get("include", []):
        entries.extend(_raw_suite(include, suites_dir)["expectations"])
    entries.extend(raw["expectations"])
    severity_of = SeverityPolicy(severities or {})
    resolved: list[ExpectationSpec] = []
    for entry in entries:
        columns: list[str | None] = [None]
        if "for_each_column" in entry:
            columns = list(_substitute(entry["for_each_column"], params, {"suite": name}))
        for column in columns:
            names = {"suite": name, "column": column or ""}
            spec_name = entry["name"].format(**names)
            resolved.append(
                ExpectationSpec(
                    name=spec_name,
                    type=entry["type"],
                    kwargs=_substitute(entry.get("kwargs", {}), params, names),
                    severity=severity_of(spec_name),
                    why=entry.get("why", ""),
                )
            )
    seen: set[str] = set()
    for spec in resolved:
        if spec.name in seen:
            raise ConfigError(f"suite {name}: expectation name {spec.name} is defined twice")
        seen.add(spec.name)
    return SuiteSpec(name=name, description=raw.get("description", ""), expectations=tuple(resolved))


class SeverityPolicy:
    """fail|warn per expectation name: exact name, else the longest matching pattern, else default."""

    def __init__(self, overrides: dict[str, Severity] | None = None, path: Path | None = None) -> None:
        config = _read_json(path or EXPECTATIONS_DIR / "severity.json")
        self.default: Severity = config.get("default", "fail")
        self.rules: dict[str, Severity] = {**config.get("expectations", {}), **(overrides or {})}
        for key, value in self.rules.items():
            if value not in ("fail", "warn"):
                raise ConfigError(f"severity of {key!r} must be 'fail' or 'warn', got {value!r}")

    def __call__(self, name: str) -> Severity:
        if name in self.rules:
            return self.rules[name]
        matches = [p for p in self.rules if fnmatchcase(name, p)]
        if matches:
            return self.rules[max(matches, key=len)]
        return self.default


def zone_limits(zone: str, path: Path | None = None) -> dict[str, float]:
    """Physical bounds of a zone (defaults merged with the zone's capacities)."""
    config = _read_json(path or EXPECTATIONS_DIR / "limits.json")
    zones = config.get("zones", {})
    if zone not in zones:
        raise ConfigError(
            f"no physical limits for zone {zone!r} in expectations/limits.json "
            f"(known: {', '.join(sorted(zones))}); add its installed capacities there"
        )
    return {**config.get("default", {}), **zones[zone]}
