"""Schema inference (``new --data``) on a 1-million-row, 30-column CSV, against plain reads.

Writes the table to a temp dir: 1,000,000 rows of 30 columns of every kind (floats with
and without gaps, integers, string categoricals of 3 to 40 values, yes/no and true/false
columns, an event time, a unique customer id, a constant, free text, a high-cardinality
code, and a binary target). Then runs each of these in its own process, ``BENCH_ROUNDS``
(default 3) times, interleaved, and prints the median wall time and the peak resident
memory (``ru_maxrss`` of that process, from ``wait4``):

* ``pyarrow.csv.read_csv`` of the file (the reader inference uses), a baseline;
* ``pandas.read_csv`` of the file, the baseline most users know;
* ``infer_schema`` (read + every count on the full columns), the figure with the target;
* ``mlops-scaffold new --dry-run --data``: the same through the CLI, plus the stack's plan.

Target (issue 15): inference under 10 s and under 1 GiB on this machine (2 cores).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROWS = 1_000_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET_SECONDS = 10.0
TARGET_BYTES = 1024**3
CLI = str(Path(sys.executable).parent / "mlops-scaffold")


def make_table(rows: int) -> pa.Table:
    """A table of 30 columns of mixed kinds (seeded: the same on every run)."""
    rng = np.random.default_rng(15)
    columns: dict[str, pa.Array] = {}
    for index in range(10):
        values = rng.normal(index, 1 + index, rows).round(4)
        mask = rng.random(rows) < 0.05 * (index % 3)  # 0%, 5% or 10% missing
        columns[f"Measure {index}"] = pa.array(values, mask=mask)
    for index in range(5):
        columns[f"count_{index}"] = pa.array(rng.integers(0, 10 ** (index + 1), rows))
    for index, size in enumerate((3, 7, 12, 25, 40)):
        labels = np.array([f"level_{index}_{value}" for value in range(size)])
        columns[f"category {index}"] = pa.array(labels[rng.integers(0, size, rows)])
    columns["subscribed"] = pa.array(np.array(["yes", "no"])[rng.integers(0, 2, rows)])
    columns["active"] = pa.array(rng.integers(0, 2, rows) == 1)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    columns["event_time"] = pa.array(start + np.arange(rows) * np.timedelta64(30, "s"))
    columns["customer_id"] = pa.array([f"C{value:07d}" for value in rng.permutation(rows)])
    columns["source"] = pa.array(np.full(rows, "web"))
    words = np.array(["late", "delivery", "great", "price", "support", "slow", "refund"])
    notes = [" ".join(words[rng.integers(0, 7, 4)]) + f" #{i}" for i in range(rows)]
    columns["notes"] = pa.array(notes)
    columns["zip_code"] = pa.array([f"Z{value:05d}" for value in rng.integers(0, 60_000, rows)])
    columns["ratio"] = pa.array(rng.random(rows))
    columns["score"] = pa.array(rng.gamma(2.0, 3.0, rows).round(2))
    columns["churned"] = pa.array(rng.integers(0, 2, rows))
    assert len(columns) == 30, len(columns)
    return pa.table(columns)


def measure(code: str) -> tuple[float, float, int]:
    """Run ``python -c code`` in a fresh process: wall and CPU seconds, peak RSS in bytes."""
    return measure_command([sys.executable, "-c", code])


def measure_command(command: list[str]) -> tuple[float, float, int]:
    """Run ``command`` in a fresh process: wall and CPU seconds, its peak RSS in bytes."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {command[:3]} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux: KiB


def main() -> None:
    """Write the table, run every row ``ROUNDS`` times, print medians against the target."""
    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        path = Path(scratch) / "customers.csv"
        started = time.perf_counter()
        pacsv.write_csv(make_table(ROWS), path)
        size = path.stat().st_size
        print(f"wrote {ROWS:,} rows x 30 columns, {size / 1024**2:.0f} MiB CSV, "
              f"in {time.perf_counter() - started:.1f} s")
        rows = {
            "pyarrow.csv.read_csv (baseline)":
                f"import pyarrow.csv as c; c.read_csv({str(path)!r})",
            "pandas.read_csv (baseline)": f"import pandas; pandas.read_csv({str(path)!r})",
            "infer_schema": (
                "from pathlib import Path\n"
                "from mlops_scaffold.owndata.infer import DataRequest, infer_schema\n"
                f"infer_schema(DataRequest(Path({str(path)!r}), 'churned'))"
            ),
        }
        cli = [CLI, "new", str(Path(scratch) / "app"), "--profile", "startup", "--dry-run",
               "--data", str(path), "--target", "churned"]
        walls: dict[str, list[float]] = {name: [] for name in [*rows, "new --dry-run --data"]}
        cpus: dict[str, list[float]] = {name: [] for name in walls}
        peaks: dict[str, list[int]] = {name: [] for name in walls}
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for _ in range(ROUNDS):
            for name in walls:
                wall, cpu, peak = measure(rows[name]) if name in rows else measure_command(cli)
                walls[name].append(wall)
                cpus[name].append(cpu)
                peaks[name].append(peak)
    print(f"median of {ROUNDS} rounds (peak: the largest); load average after: "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'step':<34} {'wall s':>7} {'cpu s':>7} {'peak RSS MiB':>13}")
    for name in walls:
        print(f"{name:<34} {statistics.median(walls[name]):7.2f} "
              f"{statistics.median(cpus[name]):7.2f} {max(peaks[name]) / 1024**2:13.0f}")
    seconds = statistics.median(walls["infer_schema"])
    peak = max(peaks["infer_schema"])
    met = seconds < TARGET_SECONDS and peak < TARGET_BYTES
    print(f"target: inference under {TARGET_SECONDS:.0f} s and 1024 MiB: "
          f"{'met' if met else 'MISSED'} ({seconds:.2f} s, {peak / 1024**2:.0f} MiB)")


if __name__ == "__main__":
    main()
