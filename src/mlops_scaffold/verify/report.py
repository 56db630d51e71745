"""What a verification run reports, and the one way it runs a command: streamed, stoppable.

Shared by the native runtime (the project's ``make verify``) and the docker runtime (the
compose stack), which import nothing of each other.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One step of a verification run."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class VerifyReport:
    """Outcome of a verification: every step, in order."""

    project: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there was at least one step and every step passed."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def failed(self) -> list[str]:
        """Names of the steps that failed."""
        return [step.name for step in self.steps if not step.ok]

    @property
    def total_seconds(self) -> float:
        """Sum of the steps' durations."""
        return sum(step.seconds for step in self.steps)


def run_streaming(
    command: list[str],
    cwd: Path,
    sink: OutputSink | None,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``command``, pass each output line (stdout and stderr) to ``sink``; return its code.

    After ``timeout`` seconds the command is killed (its code is then ``-SIGKILL``); on
    Ctrl-C, SIGTERM or any error while reading, it is terminated before the error goes on.
    """
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if process.stdout is None:  # stdout=PIPE always gives one
        raise RuntimeError("no stdout pipe")
    killer = threading.Timer(timeout, process.kill) if timeout is not None else None
    if killer is not None:
        killer.start()
    try:
        for line in process.stdout:
            if sink is not None:
                sink(line.rstrip("\n"))
        return process.wait()
    except BaseException:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        raise
    finally:
        if killer is not None:
            killer.cancel()


def read_report_steps(path: Path) -> list[Step]:
    """Return the steps of a project's JSON step report (none when missing or broken)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return [
        Step(
            str(item.get("name", "?")),
            bool(item.get("ok")),
            float(item.get("seconds", 0.0)),
            str(item.get("detail", "")),
        )
        for item in data.get("steps", [])
    ]
