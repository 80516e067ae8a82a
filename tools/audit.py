"""Audit the pinned runtime requirements for known vulnerabilities (pip-audit), strictly.

    python tools/audit.py [--service pypi|osv] [--requirements requirements.lock]

Runs ``pip-audit -r requirements.lock --no-deps --disable-pip -s SERVICE`` and prints
one line per finding (package, version, advisory id, fixed versions). pip-audit
exits 0 when it could not look a package up at all (e.g. the service is
unreachable); this wrapper does not: it exits

* 0 when every pinned package was audited and none has a known vulnerability,
* 1 when a package has one (docs/security.md says which we can upgrade),
* 3 when a package could not be audited (no vulnerability database reachable).

Needs network access to the service, so it is not part of the test run (`make audit`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOT_AUDITED_EXIT = 3


def run_pip_audit(requirements: Path, service: str) -> dict[str, Any] | None:
    """pip-audit's JSON report, or None (with its error printed) when it could not reach the service."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "-s",
            service,
            "--progress-spinner",
            "off",
            "-f",
            "json",
            "-o",
            str(out),
        ]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if not out.is_file():
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
            print(f"NOT AUDITED: pip-audit -s {service} failed: {' '.join(last)}", file=sys.stderr)
            return None
        report: dict[str, Any] = json.loads(out.read_text())
        return report


def summarise(report: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """(finding lines, not-audited packages, number of packages) of a pip-audit JSON report."""
    findings, skipped = [], []
    deps = report.get("dependencies", [])
    for dep in deps:
        if dep.get("skip_reason"):
            skipped.append(f"{dep['name']}")
            continue
        for vuln in dep.get("vulns", []):
            ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix released"
            findings.append(f"{dep['name']} {dep['version']}: {ids}; fixed in {fixed}")
    return findings, skipped, len(deps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi")
    parser.add_argument("--requirements", type=Path, default=REPO / "requirements.lock")
    args = parser.parse_args(argv)
    report = run_pip_audit(args.requirements, args.service)
    if report is None:
        return NOT_AUDITED_EXIT
    findings, skipped, total = summarise(report)
    for line in findings:
        print(line)
    audited = total - len(skipped)
    print(
        f"{args.service}: {audited} of {total} pinned packages audited, {len(findings)} known vulnerabilities"
    )
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(
            f"NOT AUDITED: {len(skipped)} package(s) could not be looked up ({shown}); the "
            f"{args.service} service is unreachable from here? try --service osv or another machine",
            file=sys.stderr,
        )
    if findings:
        return 1
    return NOT_AUDITED_EXIT if skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
