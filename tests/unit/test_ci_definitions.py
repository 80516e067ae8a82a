"""The CI definitions (GitHub Actions, Jenkins) run the README's test command and build the images.

Parsed statically (the workflow as YAML, the Jenkinsfile as text): no CI server runs here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def readme_test_command() -> str:
    """The README's test command: the second command of its first command block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"^```\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert block, "README.md has no command block"
    commands = [line.strip() for line in block[1].splitlines() if line.strip()]
    assert len(commands) >= 2, commands
    return commands[1]


def runs(command_line: str, command: str) -> bool:
    """Whether a shell line runs ``command`` (make variables after it are allowed)."""
    words, wanted = shlex.split(command_line), shlex.split(command)
    return words[: len(wanted)] == wanted and all("=" in w for w in words[len(wanted) :])


def workflow_commands() -> dict[str, list[str]]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    return {
        name: [line for step in job["steps"] if "run" in step for line in step["run"].splitlines()]
        for name, job in workflow["jobs"].items()
    }


def jenkins_commands() -> list[str]:
    text = (REPO / "Jenkinsfile").read_text()
    return [a or b for a, b in re.findall(r"""\bsh\s+'([^']*)'|\bsh\s+"([^"]*)\"""", text)]


def test_the_readme_names_make_test_and_ci_run_calls_it() -> None:
    command = readme_test_command()
    assert command == "make test"
    ci_run = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in ci_run


def test_github_workflow_runs_the_readme_command_then_builds_the_images() -> None:
    jobs = workflow_commands()
    command = readme_test_command()
    assert any(runs(line, command) for line in jobs["test"]), jobs["test"]
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    assert workflow["jobs"]["images"]["needs"] == "test"
    assert any("make images" in line for line in jobs["images"])
    # Debian 12 with CPython 3.11: the platform the lock was resolved for (docs/adr/0002).
    assert workflow["jobs"]["test"]["container"].startswith("python:3.11-bookworm")
    assert workflow["jobs"]["test"]["timeout-minutes"] <= 90


def test_jenkinsfile_runs_the_readme_command_then_builds_the_images() -> None:
    commands = jenkins_commands()
    command = readme_test_command()
    test_stage = [i for i, c in enumerate(commands) if runs(c, command)]
    images = [i for i, c in enumerate(commands) if runs(c, "make images")]
    assert test_stage, commands
    assert images, commands
    assert test_stage[0] < images[0], "images are built after the tests passed"
    assert "pipeline {" in (REPO / "Jenkinsfile").read_text()


def test_the_check_rejects_another_command() -> None:
    assert runs('make test PYTEST_ARGS="--junitxml=var/junit.xml"', "make test")
    assert not runs("make test-fast", "make test")
    assert not runs("echo make test", "make test")


def test_make_images_builds_both_images_with_the_build_script() -> None:
    makefile = (REPO / "Makefile").read_text()
    target = re.search(r"^images:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert target, "Makefile has no images target"
    assert "docker/build.sh" in target[1]
    build = (REPO / "docker" / "build.sh").read_text()
    assert "build tasks docker/Dockerfile" in build
    assert "build airflow docker/airflow.Dockerfile" in build
