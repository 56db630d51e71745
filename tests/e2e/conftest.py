"""What the end-to-end modules share: one startup virtual environment per session.

Every startup-profile project these modules set up pins the same dependencies (the own
data tables, the tf-serving and triton projects: their servers' own environments are
apart). Compiling the bytecode of ~230 packages is most of a cold ``make setup``, so the
first project's ``make setup`` builds ``.venv`` as a user's does, and each later project
links ``.venv`` to it: its ``make setup`` then installs only its own package. The startup
and enterprise e2e build their own, as a new user would.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_startup_e2e import audited_env, run

SetUp = Callable[[Path], float]


@pytest.fixture(scope="session")
def set_up_with_shared_venv() -> SetUp:
    """``make setup`` in a project, sharing one ``.venv`` per session; returns its seconds."""
    shared: list[Path] = []

    def set_up(project: Path) -> float:
        if shared:
            (project / ".venv").symlink_to(shared[0], target_is_directory=True)
        started = time.monotonic()
        run(["make", "setup"], project, 1200)
        if not shared:
            shared.append(project / ".venv")
        return time.monotonic() - started

    return set_up


def verify_audited(
    project: Path, tmp_path: Path, server_module: str, steps: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any]], float]:
    """``make verify`` under the network audit; returns its steps by name and its seconds.

    Fails unless the report is ok with ``steps`` (plus champion and drift report) passed,
    a process running ``server_module`` was started, nothing of the project is left
    running and no Python process tried to reach beyond the loopback range.
    """
    log = tmp_path / "network.jsonl"
    started = time.monotonic()
    run(["make", "verify"], project, 2400, env=audited_env(log))
    seconds = time.monotonic() - started
    report = json.loads((project / "reports" / "verify.json").read_text(encoding="utf-8"))
    by_name = {step["name"]: step for step in report["steps"]}
    assert report["ok"] is True
    for name in (*steps, "champion", "drift report"):
        assert by_name[name]["ok"], by_name[name]
    leftover = subprocess.run(["pgrep", "-f", str(project)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    started_argv = [" ".join(entry["argv"]) for entry in entries if entry["call"] == "start"]
    assert any(server_module in argv for argv in started_argv), started_argv
    outbound = [entry for entry in entries if entry["call"] != "start"]
    assert outbound == [], json.dumps(outbound, indent=1)[:6000]
    return by_name, seconds
