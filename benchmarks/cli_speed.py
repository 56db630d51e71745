"""CLI start-up and generation speed, against a bare Python start measured in the same run.

Targets (issue: foundation): ``--help`` at most 0.15 s over ``python -c pass``;
``new --profile startup --defaults`` at most 1.5 s.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CLI = str(BIN / "mlops-scaffold")
RUNS = 7


def timed(command: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_of(command: list[str]) -> float:
    timed(command)  # warm the page cache
    return statistics.median(timed(command) for _ in range(RUNS))


def main() -> None:
    bare = median_of([sys.executable, "-c", "pass"])
    help_time = median_of([CLI, "--help"])
    scratch = Path(tempfile.mkdtemp(prefix="bench-new-"))
    try:
        new_times = []
        for index in range(5):
            dest = scratch / f"p{index}"
            new_times.append(timed([CLI, "new", str(dest), "-p", "startup", "--defaults"]))
        nogit_times = []
        for index in range(5):
            dest = scratch / f"q{index}"
            nogit_times.append(
                timed([CLI, "new", str(dest), "-p", "startup", "--defaults", "--no-git"])
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    new_time = statistics.median(new_times)
    print(f"baseline  python -c pass                 {bare * 1000:7.0f} ms")
    print(f"--help                                   {help_time * 1000:7.0f} ms"
          f"  (+{(help_time - bare) * 1000:.0f} ms over baseline; target <= +150 ms)")
    print(f"new --profile startup --defaults         {new_time * 1000:7.0f} ms"
          f"  ({new_time / bare:.1f}x baseline; target <= 1500 ms)")
    nogit = statistics.median(nogit_times)
    print(f"new ... --no-git                         {nogit * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
