"""What the end-to-end modules share: one startup virtual environment per session.

Every startup-profile project these modules set up pins the same dependencies (the own
data tables, the tf-serving and triton projects: their servers' own environments are
apart). Compiling the bytecode of ~230 packages is most of a cold ``make setup``, so the
first project's ``make setup`` builds ``.venv`` as a user's does, and each later project
links ``.venv`` to it: its ``make setup`` then installs only its own package. The startup
and enterprise e2e build their own, as a new user would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_startup_e2e import run

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
