"""Neptune (the current client, ``neptune-scale``): each run's metadata, offline by default.

``NEPTUNE_MODE=offline`` (.env.example, Makefile): a run is written to a local SQLite
store, ``runs/neptune/<project>_<run id>_<ns>/run_operations.sqlite3`` (the queue the
client's sync process would send from), with no sync process and no token; ``neptune
sync <that file>`` uploads it later once ``NEPTUNE_API_TOKEN`` and ``NEPTUNE_PROJECT`` are
set, and ``NEPTUNE_MODE=async`` logs live: no code changes. Params go to ``params/*``
configs, tags to ``tags/*`` configs and as ``key:value`` run tags, metrics to series at
step 0, a tuning run's trials by step, the model and report files to ``artifacts/*``
file fields (copied next to the store first: the upload reads them later). Neptune's
model registry needs the server: the MLflow registry serves the model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..config import Settings
from .trackers import RunRecord


def log_dir(settings: Settings) -> Path:
    """The directory of the run stores: ``$NEPTUNE_LOG_DIRECTORY`` or ``runs/neptune``."""
    configured = os.environ.get("NEPTUNE_LOG_DIRECTORY")
    return Path(configured) if configured else settings.paths.root / "runs" / "neptune"


def run_id(record: RunRecord) -> str:
    """The Neptune run id of ``record``: ``<run name>-<MLflow run id>``."""
    return f"{record.name}-{record.run_id}"


def project(record: RunRecord) -> str:
    """``$NEPTUNE_PROJECT`` (``workspace/project``) or ``offline/<experiment>``."""
    return os.environ.get("NEPTUNE_PROJECT") or f"offline/{record.experiment}"


def _files(record: RunRecord, target: Path) -> dict[str, Path]:
    """Copy the run's artifacts under ``target``: the attribute name of each file."""
    found: dict[str, Path] = {}
    for name, path in record.artifacts.items():
        copy = target / name
        if path.is_dir():
            shutil.copytree(path, copy, dirs_exist_ok=True)
            for item in sorted(copy.rglob("*")):
                if item.is_file():
                    found[f"artifacts/{name}/{item.relative_to(copy).as_posix()}"] = item
        elif path.is_file():
            copy.mkdir(parents=True, exist_ok=True)
            found[f"artifacts/{name}/{path.name}"] = Path(shutil.copy2(path, copy / path.name))
    return found


def log_run(settings: Settings, record: RunRecord) -> None:
    """Write ``record`` as one Neptune run (offline unless ``NEPTUNE_MODE`` says otherwise)."""
    from neptune_scale import Run

    directory = log_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    files = _files(record, directory / "files" / run_id(record))
    run = Run(
        run_id=run_id(record),
        project=project(record),
        mode=os.environ.get("NEPTUNE_MODE", "offline"),
        log_directory=directory,
        enable_console_log_capture=False,
        source_tracking_config=None,
    )
    try:
        run.log_configs(
            {
                "mlflow_run_id": record.run_id,
                "experiment": record.experiment,
                **{f"params/{key}": value for key, value in record.params.items()},
                **{f"tags/{key}": value for key, value in record.tags.items()},
            }
        )
        run.add_tags([f"{key}:{value}" for key, value in sorted(record.tags.items())])
        steps = max((len(values) for values in record.series.values()), default=1)
        for step in range(steps):
            row = {k: v[step] for k, v in record.series.items() if step < len(v)}
            run.log_metrics({**record.metrics, **row} if step == 0 else row, step=step)
        if files:
            run.assign_files(dict(files.items()))
    finally:
        run.close()
