"""Serving benchmark of a generated startup project: its API against ``mlflow models serve``.

Renders the startup profile into a temp dir (or uses ``--project DIR``), runs ``make setup``
and ``make bench`` there (which runs the pipeline first when there is no champion), and
prints the project's table; the figures are in ``<project>/reports/bench.json``. Targets
(issue 9) are printed by the project's benchmark. ``BENCH_DURATION`` / ``BENCH_LONG`` pass
through to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CLI = str(Path(sys.executable).parent / "mlops-scaffold")


def main() -> None:
    """Render (unless ``--project``), set up and benchmark a startup project."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="an existing, set-up startup project")
    parser.add_argument("--keep", action="store_true", help="keep the rendered project")
    args = parser.parse_args()
    scratch: Path | None = None
    if args.project is None:
        scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
        project = scratch / "churn"
        subprocess.run([CLI, "new", str(project), "-p", "startup", "--defaults"], check=True)
        subprocess.run(["make", "setup"], cwd=project, check=True, stdout=subprocess.DEVNULL)
    else:
        project = args.project.resolve()
    try:
        subprocess.run(["make", "bench"], cwd=project, check=True)
        report = json.loads((project / "reports" / "bench.json").read_text(encoding="utf-8"))
        met = sum(1 for target in report["targets"] if target["met"])
        print(f"\n{met}/{len(report['targets'])} targets met; report: "
              f"{project / 'reports' / 'bench.json'}")
    finally:
        if scratch is not None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        elif scratch is not None:
            print(f"kept {project}")


if __name__ == "__main__":
    main()
