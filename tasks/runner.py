"""The local runner: run a stage's command on this machine, as the pod would.

The Airflow task of the ``local`` runner calls :func:`run_stage_command`; it
starts ``python -m tasks.<stage> ARGS`` in a child process (same interpreter,
same environment, so the same command as in the pod image), streams its output
to the task log, and returns the stage's JSON result. Standard library only
(``tasks.errors`` imports nothing): DAG files import this module at parse time.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import PIPELINE_ERROR_EXIT

log = logging.getLogger(__name__)

#: Lines of a failed stage's output repeated at ERROR level (they survive a WARNING log level).
FAILURE_TAIL_LINES = 30


@dataclass(frozen=True)
class StageFailed(Exception):
    """A stage command exited non-zero; ``message`` is its last error line."""

    stage: str
    returncode: int
    message: str
    package: str = "tasks"

    @property
    def retryable(self) -> bool:
        """Everything but a PipelineError (exit 2): crashes and SERVICE_UNAVAILABLE_EXIT included."""
        return self.returncode != PIPELINE_ERROR_EXIT

    def __str__(self) -> str:
        return f"{self.package}.{self.stage} exited {self.returncode}: {self.message}"


def stage_command(stage: str, arguments: Sequence[str], package: str = "tasks") -> list[str]:
    """The argv that the pod runs too (``python -m tasks.<stage> ...``)."""
    return [sys.executable, "-m", f"{package}.{stage}", *map(str, arguments)]


def run_stage_command(
    stage: str,
    arguments: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    package: str = "tasks",
) -> dict[str, Any]:
    """Run one stage command and return its JSON result; raise StageFailed on error.

    ``package`` is ``tasks`` for the pipeline's stages; the development upstream
    (``devtools.simulator``) runs through the same contract.
    """
    argv = stage_command(stage, arguments, package)
    log.info("running: %s", " ".join(argv[1:]))
    with tempfile.TemporaryDirectory(prefix="dap-result-") as tmp:
        result_file = Path(tmp) / "return.json"
        child_env = {**os.environ, **(env or {}), "DAP_RESULT_FILE": str(result_file)}
        child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # A native crash (SIGSEGV, SIGABRT in a C library) prints every thread's Python stack.
        child_env.setdefault("PYTHONFAULTHANDLER", "1")
        last_error = ""
        tail: collections.deque[str] = collections.deque(maxlen=FAILURE_TAIL_LINES)
        with subprocess.Popen(
            argv,
            env=child_env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            for raw_line in proc.stdout:
                line = raw_line.rstrip("\n")
                log.info("[%s] %s", stage, line)
                tail.append(line)
                if line.startswith("ERROR ") or "Error" in line.split(":", 1)[0]:
                    last_error = line.removeprefix("ERROR ")
        if proc.returncode != 0:
            log.error("%s.%s failed; its last %d lines:\n%s", package, stage, len(tail), "\n".join(tail))
            raise StageFailed(stage, proc.returncode, last_error or failure_hint(proc.returncode), package)
        if not result_file.exists():
            raise StageFailed(stage, 1, "the stage wrote no result (DAP_RESULT_FILE)", package)
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def failure_hint(returncode: int) -> str:
    """What a non-zero exit without an error line says: the signal that ended the stage, if any."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            return "killed by SIGKILL (often the out-of-memory killer); see the task log above"
        return f"killed by {name} (a crash in native code; its Python stack is in the task log above)"
    return "see the task log above"
