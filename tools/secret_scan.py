"""Scan the git-tracked tree (or given files) for secrets with detect-secrets.

    python tools/secret_scan.py            # the tracked tree; exit 1 on an unreviewed finding
    python tools/secret_scan.py FILE ...   # just these files (e.g. a rendered Helm chart)

Plugins and filters are those recorded in ``.secrets.baseline`` (detect-secrets'
defaults when it was made). A finding is accepted only when the baseline lists it
(same file, type and hashed secret; line numbers may move) and a reviewer marked it
``"is_secret": false``. After a reviewed change, update the baseline with
``detect-secrets scan --baseline .secrets.baseline`` and label new entries with
``detect-secrets audit .secrets.baseline`` (docs/security.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / ".secrets.baseline"


class Finding(NamedTuple):
    filename: str
    type: str
    hashed_secret: str


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    baseline: dict[str, Any] = json.loads(path.read_text())
    return baseline


def scan_config(baseline: dict[str, Any]) -> dict[str, Any]:
    """The detect-secrets settings a baseline was made with (its plugins and filters)."""
    return {"plugins_used": baseline["plugins_used"], "filters_used": baseline["filters_used"]}


def tracked_files(root: Path = REPO) -> list[str]:
    """Paths (relative to ``root``) git tracks, that exist, except the baseline itself."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("git is needed to list the tracked files")
    out = subprocess.run([git, "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True).stdout
    names = [name for name in out.split("\0") if name]
    return [n for n in names if n != BASELINE.name and (root / n).is_file()]


def scan(paths: Iterable[str], root: Path, config: dict[str, Any]) -> set[Finding]:
    """Every potential secret detect-secrets finds in ``paths`` (relative to ``root``)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import transient_settings

    collection = SecretsCollection(root=str(root))
    with transient_settings(config):
        for path in paths:
            collection.scan_file(path)
    return {Finding(name, secret.type, secret.secret_hash) for name, secret in collection}


def reviewed(baseline: dict[str, Any]) -> set[Finding]:
    """The baseline's entries a reviewer marked as no secret (``"is_secret": false``)."""
    return {
        Finding(item["filename"], item["type"], item["hashed_secret"])
        for items in baseline["results"].values()
        for item in items
        if item.get("is_secret") is False
    }


def unreviewed(found: set[Finding], baseline: dict[str, Any]) -> list[Finding]:
    """Findings the baseline does not clear: each is a secret until a reviewer says otherwise."""
    return sorted(found - reviewed(baseline))


def main(argv: list[str]) -> int:
    baseline = load_baseline()
    paths = argv or tracked_files()
    root = REPO if not argv else Path.cwd()
    new = unreviewed(scan(paths, root, scan_config(baseline)), baseline)
    for finding in new:
        print(f"{finding.filename}: {finding.type} (hashed {finding.hashed_secret})", flush=True)
    if new:
        print(
            f"{len(new)} unreviewed finding(s): remove the secret (and rotate it), or, for a false "
            "positive, add it to .secrets.baseline (docs/security.md)",
            file=sys.stderr,
        )
    else:
        print(f"no unreviewed secrets in {len(paths)} file(s)")
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
