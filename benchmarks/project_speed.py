"""Setup and verify time of a generated startup project, on this machine.

Targets (issue: foundation): ``make setup`` at most 60 s with a warm uv cache;
``make verify`` at most 3 min after setup. The baseline is the same ``make setup`` run a
second time into a fresh venv (cache fully warm), measured in the same run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "mlops-scaffold")


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-project-"))
    try:
        project = scratch / "bench-startup"
        subprocess.run([CLI, "new", str(project), "-p", "startup", "--defaults"], check=True,
                       stdout=subprocess.DEVNULL)
        first_setup = timed(["make", "setup"], project)
        shutil.rmtree(project / ".venv")
        warm_setup = timed(["make", "setup"], project)
        verify = timed(["make", "verify"], project)
        steps = json.loads((project / "reports" / "verify.json").read_text())["steps"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"make setup (first in this run)     {first_setup:6.1f} s")
    print(f"make setup (warm uv cache)         {warm_setup:6.1f} s  (target <= 60 s)")
    print(f"make verify                        {verify:6.1f} s  (target <= 180 s)")
    for step in steps:
        print(f"  {step['name']:<32} {step['seconds']:6.1f} s  {'ok' if step['ok'] else 'FAILED'}")


if __name__ == "__main__":
    main()
