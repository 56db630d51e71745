"""``make verify`` with every experiment tracker on, against MLflow alone, in one run.

Two projects are generated side by side: ``startup`` as it is (MLflow only) and
``startup`` with ``trackers=wandb,neptune,comet,clearml,tensorboard``. ``make setup``
runs in each first (not timed: the trackers' packages make the second one longer),
then ``make verify`` is timed for each, alternating which goes first round by round so a
load change on a shared machine hits both alike (``BENCH_ROUNDS``, default 1: a verify
takes minutes). The wall and CPU times (user + system of make and its children), their
medians and the ratio are printed with the load average before and after.

Target (issue 16): with all five trackers, ``make verify`` at most 25% longer than with
MLflow alone (ratio <= 1.25). Usage: ``python benchmarks/verify_trackers.py [WORKDIR]``;
``KEEP=1`` keeps the projects.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "mlops-scaffold")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
TARGET = 1.25
STACKS = {
    "mlflow only": ("--profile", "startup"),
    "all trackers": (
        "--profile", "startup", "--set", "trackers=wandb,neptune,comet,clearml,tensorboard",
    ),
}  # fmt: skip


def timed(command: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run ``command`` in ``cwd`` (output to ``log``); its wall and children's CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd} (exit {done.returncode}); see {log}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="vt-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    projects = {}
    for index, (name, options) in enumerate(STACKS.items()):
        target = work / f"project-{index}"
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([CLI, "new", str(target), *options, "--defaults"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        wall, _ = timed(["make", "setup"], target, work / f"setup-{index}.log")
        print(f"{name:13s} make setup {wall:7.1f} s (not compared)")
        projects[name] = target
    walls: dict[str, list[float]] = {name: [] for name in projects}
    cpus: dict[str, list[float]] = {name: [] for name in projects}
    for round_ in range(ROUNDS):
        order = list(projects) if round_ % 2 == 0 else list(reversed(projects))
        for name in order:
            index = list(projects).index(name)
            log = work / f"verify-{index}-{round_}.log"
            wall, cpu = timed(["make", "verify"], projects[name], log)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"{name:13s} make verify {wall:7.1f} s wall {cpu:7.1f} s cpu (round {round_})")
    base, full = (statistics.median(walls[name]) for name in STACKS)
    base_cpu, full_cpu = (statistics.median(cpus[name]) for name in STACKS)
    ratio = full / base
    print(f"median make verify: mlflow only {base:.1f} s, all trackers {full:.1f} s")
    print(f"ratio wall {ratio:.3f} (target <= {TARGET}), cpu {full_cpu / base_cpu:.3f}")
    print(f"load average after: {os.getloadavg()}")
    if not os.environ.get("KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
