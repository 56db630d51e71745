"""The native runtime: drive a project's own ``make verify`` and read its step report.

The project carries its verification code; this module only runs it, so the code that
ships is the code that was verified. ``smoke`` generates a project into a temp dir,
sets it up and verifies it: the command a template maintainer's CI runs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ..errors import ProjectError, ToolMissingError, UsageError
from ..render import ANSWERS_FILE
from .report import OutputSink, Step, VerifyReport, read_report_steps, run_streaming

RUNTIMES = ("native", "docker")
REPORT_PATH = Path("reports") / "verify.json"


def check_runtime(runtime: str) -> None:
    """Raise a usage error for a runtime this installation cannot drive."""
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime {runtime!r}: allowed runtimes are {', '.join(RUNTIMES)}")


def _require(tool: str, hint: str) -> str:
    executable = shutil.which(tool)
    if executable is None:
        raise ToolMissingError(f"{tool} is not installed; {hint}")
    return executable


def verify_project(
    project: Path, runtime: str = "native", sink: OutputSink | None = None
) -> VerifyReport:
    """Run the project's ``make verify`` (native) or its compose stack (docker); report steps.

    Raises :class:`ProjectError` when ``project`` is not a generated project or was not
    set up. A verification that runs and fails is returned with ``ok`` false.
    """
    check_runtime(runtime)
    try:
        project = project.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise ProjectError(f"{project}: cannot resolve the path ({exc})") from None
    if not (project / ANSWERS_FILE).is_file():
        raise ProjectError(f"{project}: not a generated project ({ANSWERS_FILE} is missing)")
    if not (project / ".venv" / "bin" / "python").is_file():
        raise ProjectError(f"{project}: not set up yet; run `make setup` there first")
    if runtime == "docker":
        from .docker import verify_in_docker

        return verify_in_docker(project, sink)
    make = _require("make", "install GNU make")
    report_file = project / REPORT_PATH
    report_file.unlink(missing_ok=True)
    started = time.perf_counter()
    code = run_streaming([make, "--no-print-directory", "verify"], project, sink)
    report = VerifyReport(project, read_report_steps(report_file))
    if code != 0 and report.ok:
        report.steps.append(
            Step("make verify", False, time.perf_counter() - started, f"exit {code}")
        )
    if not report.steps:
        report.steps.append(
            Step("make verify", code == 0, time.perf_counter() - started, "no step report written")
        )
    return report


def setup_project(project: Path, sink: OutputSink | None = None) -> Step:
    """Run the project's ``make setup`` (uv venv + pinned install) as one step."""
    make = _require("make", "install GNU make")
    # No uv needed here: the project's `make setup` installs a pinned one when it is missing.
    started = time.perf_counter()
    code = run_streaming([make, "--no-print-directory", "setup"], project, sink)
    return Step("make setup", code == 0, time.perf_counter() - started, f"exit {code}")


def smoke(
    profile: str,
    *,
    keep: bool = False,
    runtime: str = "native",
    sink: OutputSink | None = None,
) -> VerifyReport:
    """Generate ``profile`` into a temp dir, set it up, verify it; remove it unless ``keep``."""
    from ..project import create_project
    from ..stacks import load_stack

    check_runtime(runtime)
    stack = load_stack(profile=profile)
    workdir = Path(tempfile.mkdtemp(prefix=f"mlops-scaffold-smoke-{profile}-"))
    project = workdir / f"smoke-{profile}"
    try:
        started = time.perf_counter()
        create_project(stack, project)
        steps = [Step("generate", True, time.perf_counter() - started, str(project))]
        setup = setup_project(project, sink)
        steps.append(setup)
        if not setup.ok:
            return VerifyReport(project, steps)
        verified = verify_project(project, runtime, sink)
        return VerifyReport(project, steps + verified.steps)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
