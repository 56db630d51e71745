"""Verify a generated project: the project carries its checks; this package only drives them.

``native`` runs the project's own ``make verify`` and reads its step report; ``docker``
builds and runs its compose stack in containers (imported only for ``--runtime docker``:
it needs the container harness). ``report`` holds what both return.
"""

from __future__ import annotations

from .native import REPORT_PATH, RUNTIMES, check_runtime, setup_project, smoke, verify_project
from .report import OutputSink, Step, VerifyReport

__all__ = [
    "REPORT_PATH",
    "RUNTIMES",
    "OutputSink",
    "Step",
    "VerifyReport",
    "check_runtime",
    "setup_project",
    "smoke",
    "verify_project",
]
