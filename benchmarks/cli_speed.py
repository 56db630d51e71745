"""CLI start-up and ``new`` speed, side by side with bare Python and a plain ``copier copy``.

All commands run in one loop, interleaved round by round, so a load change on a shared
machine hits them alike. Each figure is the median over ``BENCH_ROUNDS`` (default 7)
rounds of the wall time and of the CPU time (user + system) the command and its children
used; on a busy machine the CPU figure is the steadier one. The load average is printed
before and after.

Rows: ``python -c pass`` (the floor); ``--help``; ``new --profile startup --defaults``
(git init + render commit) with the compile cache warm (every run after the first) and
cold (an empty cache each run, like the very first ``new``); ``new ... --no-git``; and
``copier copy`` of the same template with the same answers (no git), the baseline.
The package's byte-code is compiled first, as installing the wheel does
(``PYTHONDONTWRITEBYTECODE`` would otherwise recompile every module on every run).

Targets (issue 13): ``new --profile startup --defaults`` at most 800 ms including git;
``--help`` within 100 ms of ``python -c pass``.
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

import mlops_scaffold
from mlops_scaffold.project import project_answers
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import load_stack

CLI = str(Path(sys.executable).parent / "mlops-scaffold")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
NEW_TARGET = 0.8
HELP_MARGIN = 0.1


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command``; return its wall time and the CPU time it and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    compileall.compile_dir(Path(mlops_scaffold.__file__).parent, quiet=1)
    scratch = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        figures = measure(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(*figures)


Runs = dict[str, list[tuple[float, float]]]


def measure(scratch: Path) -> tuple[Runs, tuple[float, ...], tuple[float, ...]]:
    answers_file = scratch / "answers.yml"
    answers_file.write_text(
        yaml.safe_dump(project_answers(load_stack(profile="startup"), scratch / "c"))
    )
    numbers = iter(range(1_000_000))
    warm = {**os.environ, "MLOPS_SCAFFOLD_CACHE_DIR": str(scratch / "cache")}

    def dest(prefix: str) -> str:
        return str(scratch / f"{prefix}{next(numbers)}")

    def cold() -> dict[str, str]:
        return {**os.environ, "MLOPS_SCAFFOLD_CACHE_DIR": dest("cache")}

    new = [CLI, "new", "-p", "startup", "--defaults"]
    commands: dict[str, Callable[[], tuple[list[str], dict[str, str]]]] = {
        "python -c pass": lambda: ([sys.executable, "-c", "pass"], warm),
        "mlops-scaffold --help": lambda: ([CLI, "--help"], warm),
        "new -p startup --defaults": lambda: ([*new, dest("n")], warm),
        "  same, cold compile cache": lambda: ([*new, dest("k")], cold()),
        "new -p startup --defaults --no-git": lambda: ([*new, "--no-git", dest("g")], warm),
        "copier copy --defaults (same answers)": lambda: (
            [sys.executable, "-m", "copier", "copy", "--quiet", "--defaults", "--trust",
             "--data-file", str(answers_file), str(template_dir()), dest("c")],
            warm,
        ),
    }
    load_before = os.getloadavg()
    for make in commands.values():  # warm the page cache and the compile cache
        run_timed(*make())
    runs: Runs = {name: [] for name in commands}
    for _ in range(ROUNDS):
        for name, make in commands.items():
            runs[name].append(run_timed(*make()))
    return runs, load_before, os.getloadavg()


def report(runs: Runs, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    wall = {name: statistics.median(w for w, _ in samples) for name, samples in runs.items()}
    cpu = {name: statistics.median(c for _, c in samples) for name, samples in runs.items()}
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after "
        f"{load_after[0]:.2f} {load_after[1]:.2f} ({os.cpu_count()} CPUs); "
        f"median of {ROUNDS} interleaved rounds"
    )
    print(f"{'command':<40} {'wall ms':>8} {'cpu ms':>8}")
    for name in runs:
        print(f"{name:<40} {wall[name] * 1000:8.0f} {cpu[name] * 1000:8.0f}")
    new, copier = "new -p startup --defaults", "copier copy --defaults (same answers)"
    for kind, figures in (("wall", wall), ("cpu", cpu)):
        over = figures["mlops-scaffold --help"] - figures["python -c pass"]
        help_verdict = "met" if over <= HELP_MARGIN else "MISSED"
        new_verdict = "met" if figures[new] <= NEW_TARGET else "MISSED"
        print(
            f"[{kind}] --help +{over * 1000:.0f} ms over python -c pass "
            f"(target <= +{HELP_MARGIN * 1000:.0f}: {help_verdict}); "
            f"new {figures[new] * 1000:.0f} ms (target <= {NEW_TARGET * 1000:.0f}: "
            f"{new_verdict}); copier copy / new = {figures[copier] / figures[new]:.1f}x"
        )


if __name__ == "__main__":
    main()
