"""No secret in the repository: detect-secrets over the git-tracked tree, against a reviewed baseline.

The rendered specs (Helm chart, task pod specs) are scanned by
``tests/dags/test_no_secrets_in_specs.py``; stage logs by
``tests/integration/test_no_secrets_in_logs.py``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tasks.redact import MASK, RedactingFilter, has_password, redact

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit

# Split so that this file itself holds no literal a scanner would flag.
FAKE_AWS_KEY = "AKIA" + "ZQ3DRK7LPMB4XTWN"
FAKE_PRIVATE_KEY = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7b\n-----END RSA " + "PRIVATE KEY-----\n"
)


def creds(password: str, user: str = "user") -> str:
    """``user:password@``, joined at run time: the tree scan must not flag this file's examples."""
    return f"{user}:{password}@"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secret_scan", REPO / "tools" / "secret_scan.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("secret_scan", module)  # NamedTuple needs its module importable
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


@pytest.fixture(scope="module")
def baseline(tool: ModuleType) -> dict[str, Any]:
    loaded: dict[str, Any] = tool.load_baseline()
    return loaded


@pytest.mark.slow
def test_the_tracked_tree_holds_no_unreviewed_secret(tool: ModuleType, baseline: dict[str, Any]) -> None:
    files = tool.tracked_files()
    assert len(files) > 100, "git ls-files found the tree"
    found = tool.scan(files, REPO, tool.scan_config(baseline))
    assert tool.unreviewed(found, baseline) == [], (
        "remove the secret (and rotate it), or, for a reviewed false positive, add it to .secrets.baseline "
        "(docs/security.md)"
    )
    # The allowlist stays minimal: an entry that no longer matches anything is removed.
    stale = sorted(tool.reviewed(baseline) - found)
    assert stale == [], "entries of .secrets.baseline that match nothing any more: re-run detect-secrets scan"


def test_every_baseline_entry_was_reviewed(baseline: dict[str, Any]) -> None:
    entries = [item for items in baseline["results"].values() for item in items]
    assert entries, "the baseline holds the known false positives"
    assert all(item.get("is_secret") is False for item in entries), (
        "label each entry with detect-secrets audit .secrets.baseline"
    )
    assert {p["name"] for p in baseline["plugins_used"]} >= {
        "AWSKeyDetector",
        "PrivateKeyDetector",
        "KeywordDetector",
        "BasicAuthDetector",
        "JwtTokenDetector",
        "Base64HighEntropyString",
    }


def test_the_scan_finds_planted_secrets(tool: ModuleType, baseline: dict[str, Any], tmp_path: Path) -> None:
    # The check above must be able to fail: a key, a private key and a URI password are caught.
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    (tmp_path / "deploy.pem").write_text(FAKE_PRIVATE_KEY)
    (tmp_path / "values.yaml").write_text(
        f"tracking: http://{creds('s3cr3t-Pa55', 'mlflow')}mlflow.example:5000\n"
    )
    (tmp_path / "clean.py").write_text("URI = 'http://mlflow:5000'\n")
    found = tool.scan(
        ["settings.py", "deploy.pem", "values.yaml", "clean.py"], tmp_path, tool.scan_config(baseline)
    )
    assert {(f.filename, f.type) for f in found} >= {
        ("settings.py", "AWS Access Key"),
        ("deploy.pem", "Private Key"),
        ("values.yaml", "Basic Auth Credentials"),
    }
    assert not any(f.filename == "clean.py" for f in found)
    assert len(tool.unreviewed(found, baseline)) == len(found)


def test_only_reviewed_baseline_entries_clear_a_finding(tool: ModuleType, baseline: dict[str, Any]) -> None:
    known = tool.Finding("tests/fixtures/x.txt", "JSON Web Token", "ab12")
    other = tool.Finding("tasks/x.py", "Secret Keyword", "cd34")
    pending = tool.Finding("tasks/y.py", "Secret Keyword", "ef56")

    def entry(finding: Any, **labels: bool) -> dict[str, Any]:
        return {"type": finding.type, "filename": finding.filename, "hashed_secret": finding[2], **labels}

    listed = {
        **baseline,
        "results": {known.filename: [entry(known, is_secret=False)], pending.filename: [entry(pending)]},
    }
    # Listed and labelled false positive: cleared; listed but not reviewed, or not listed: reported.
    assert tool.unreviewed({known, other, pending}, listed) == sorted([other, pending])
    moved = tool.Finding("tests/fixtures/y.txt", known.type, known.hashed_secret)
    assert tool.unreviewed({moved}, listed) == [moved], "an allowlisted value in another file is reported"


def test_the_command_line_scan_fails_on_a_planted_key(tmp_path: Path) -> None:
    leaked = tmp_path / "leak.env"
    leaked.write_text(f"AWS_ACCESS_KEY_ID={FAKE_AWS_KEY}\n")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "secret_scan.py"), "leak.env"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "leak.env: AWS Access Key" in proc.stdout
    assert FAKE_AWS_KEY not in proc.stdout + proc.stderr, "the report names the finding, not the secret"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"http://{creds('canary-1')}127.0.0.1:1/health", f"http://{creds(MASK)}127.0.0.1:1/health"),
        (
            f"postgresql+psycopg2://{creds('pw%40x', 'mlflow')}db/mlflow",
            f"postgresql+psycopg2://{creds(MASK, 'mlflow')}db/mlflow",
        ),
        (
            "GET https://api.example/?securityToken=abc-123&documentType=A44",
            "GET https://api.example/?securityToken=***&documentType=A44",
        ),
        ("s3://bucket/key?X-Amz-Signature=deadbeef", "s3://bucket/key?X-Amz-Signature=***"),
        (
            "http://user@mlflow:5000 and http://mlflow:5000/path?run=1",
            "http://user@mlflow:5000 and http://mlflow:5000/path?run=1",
        ),
        ("at 12:30@home, ratio 1:2", "at 12:30@home, ratio 1:2"),
    ],
)
def test_redact_masks_passwords_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_has_password() -> None:
    assert has_password(f"http://{creds('pw')}mlflow:5000")
    assert has_password(f"postgresql://{creds('p', 'u')}db:badport/x")  # unreadable port: still refused
    assert not has_password("http://user@mlflow:5000")
    assert not has_password("sqlite:////data/mlflow/mlflow.db")
    assert not has_password("")


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    import logging

    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "server %s down", (f"http://{creds('canary-2')}h/",), None
    )
    try:
        raise ConnectionError(f"refused: http://{creds('canary-3')}h/api")
    except ConnectionError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    # (the traceback quotes this file's source line, which names the canary but holds no URI)
    assert creds("canary-2") not in text
    assert creds("canary-3") not in text
    assert f"server http://{creds(MASK)}h/ down" in text
    assert f"refused: http://{creds(MASK)}h/api" in text


def test_a_password_in_an_mlflow_uri_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from tasks.config import Settings, settings_error

    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", f"http://{creds('canary-4')}mlflow:5000")
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(settings_error(info.value))
    assert "canary-4" not in message
    assert "DAP_MLFLOW_TRACKING_URI" in message
    assert "MLFLOW_TRACKING_PASSWORD" in message
    assert f"http://{creds(MASK)}mlflow:5000" in message
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", "http://user@mlflow:5000")
    assert Settings().tracking_uri == "http://user@mlflow:5000"


def test_a_stage_refuses_a_uri_password_in_one_line_without_printing_it(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "DAP_DATA_ROOT": str(tmp_path / "data"),
        "DAP_MLFLOW_TRACKING_URI": f"http://{creds('canary-5')}127.0.0.1:1/",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tasks.forecast", "--delivery-date", "2026-06-10", "-v"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "canary-5" not in output
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, output
    assert "DAP_MLFLOW_TRACKING_URI" in errors[0]
    assert "Traceback" not in output
