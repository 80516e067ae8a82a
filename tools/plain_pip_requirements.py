"""Write requirements.txt: the locked runtime environment for plain ``pip install -r``.

``requirements.lock`` is meant for ``uv pip install ... --override overrides.txt``.
The override drops ``tensorflow``, which TFDV, tfx-bsl and tensorflow-serving-api
declare, so that ``tensorflow-cpu`` alone provides the ``tensorflow`` module. pip has
no ``--override``: from the plain lock it would install full ``tensorflow`` *beside*
``tensorflow-cpu`` (two wheels writing one package). So requirements.txt pins every
package of the lock, with full ``tensorflow`` of the same version in place of
``tensorflow-cpu`` (same module and dependencies, about 0.7 GB larger): pip then finds
every requirement pinned and resolves nothing beyond the lock.

``python tools/plain_pip_requirements.py`` rewrites it (``make lock`` runs it);
``--check`` exits 1 when the file is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Packages overrides.txt removes (marker never true) -> the locked package that provides them.
PROVIDED_BY = {"tensorflow": "tensorflow-cpu"}
HEADER = """\
# The locked runtime environment for plain pip: pip install -r requirements.txt
# Generated from requirements.lock by `make lock` (tools/plain_pip_requirements.py); do not edit.
# Every package of the lock is pinned; full tensorflow stands in for tensorflow-cpu because
# pip cannot apply overrides.txt (uv installs use requirements.lock + --override overrides.txt).
"""


def dropped_by_overrides(overrides: str) -> set[str]:
    """Names overrides.txt removes from the resolution (an override whose marker is never true)."""
    dropped = set()
    for line in overrides.splitlines():
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        name, _, marker = spec.partition(";")
        if re.fullmatch(r"""\s*sys_platform\s*==\s*["']never["']\s*""", marker):
            dropped.add(name.strip().lower())
        else:
            raise ValueError(f"overrides.txt: pip cannot express the override {spec!r}; handle it here")
    return dropped


def render(lock: str, overrides: str) -> str:
    """requirements.txt for ``lock`` (requirements.lock text) and ``overrides`` (overrides.txt)."""
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._\-\[\]]*)==(\S+)", lock, flags=re.MULTILINE))
    for name in dropped_by_overrides(overrides):
        provider = PROVIDED_BY.get(name)
        if provider is None or provider not in pins:
            raise ValueError(f"overrides.txt drops {name!r} but no locked package provides it")
        pins[name] = pins.pop(provider)
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def expected() -> str:
    return render((REPO / "requirements.lock").read_text(), (REPO / "overrides.txt").read_text())


def main(argv: list[str]) -> int:
    target = REPO / "requirements.txt"
    if "--check" in argv:
        if not target.exists() or target.read_text() != expected():
            print("requirements.txt is out of date with requirements.lock: run `make lock`", file=sys.stderr)
            return 1
        return 0
    target.write_text(expected())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
