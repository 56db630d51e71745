"""Comet: each run's parameters, metrics, tags and artifacts, offline by default.

``COMET_START_ONLINE=false`` (.env.example, Makefile): a run is a Comet
``OfflineExperiment`` archived as ``runs/comet/<experiment key>.zip`` and uploaded later
with ``comet upload`` once ``COMET_API_KEY`` is set; ``COMET_START_ONLINE=true`` logs
live: no code changes. Offline means offline: ``log_env_details=False`` (otherwise the
experiment probes the cloud metadata address 169.254.169.254 for host details),
``COMET_ERROR_TRACKING_ENABLE=false`` (no error reports), no code, git, graph or
auto-logging. Params go to the experiment's parameters, metrics at step 0, a tuning
run's trials by step, tags as ``key:value`` tags and as "others" (with the MLflow run
id), the model through ``log_model`` and the report as an asset. Comet's model registry
needs the server: the MLflow registry serves the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import Settings
from .trackers import RunRecord

#: Everything Comet would collect on its own, off: this project logs what MLflow holds.
QUIET: dict[str, Any] = {
    "log_code": False,
    "log_graph": False,
    "log_git_metadata": False,
    "log_git_patch": False,
    "log_env_details": False,  # host details: probes 169.254.169.254 when on
    "log_env_gpu": False,
    "log_env_host": False,
    "log_env_cpu": False,
    "log_env_network": False,
    "log_env_disk": False,
    "auto_param_logging": False,
    "auto_metric_logging": False,
    "auto_output_logging": False,
    "auto_log_co2": False,
    "parse_args": False,
    "display_summary_level": 0,
}


def offline_dir(settings: Settings) -> Path:
    """The directory of the archives: ``$COMET_OFFLINE_DIRECTORY`` or ``runs/comet``."""
    configured = os.environ.get("COMET_OFFLINE_DIRECTORY")
    return Path(configured) if configured else settings.paths.root / "runs" / "comet"


def online() -> bool:
    """Whether ``COMET_START_ONLINE`` asks for a live experiment (offline by default)."""
    return os.environ.get("COMET_START_ONLINE", "false").strip().lower() in {"1", "true", "yes"}


def log_run(settings: Settings, record: RunRecord) -> None:
    """Write ``record`` as one Comet experiment (an offline archive unless set online)."""
    os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    import comet_ml

    project = os.environ.get("COMET_PROJECT_NAME") or record.experiment
    workspace = os.environ.get("COMET_WORKSPACE") or None
    if online():
        experiment: Any = comet_ml.Experiment(project_name=project, workspace=workspace, **QUIET)
    else:
        directory = offline_dir(settings)
        directory.mkdir(parents=True, exist_ok=True)
        experiment = comet_ml.OfflineExperiment(
            project_name=project, workspace=workspace, offline_directory=str(directory), **QUIET
        )
    try:
        experiment.set_name(record.name)
        experiment.log_parameters(record.params)
        experiment.log_others({**record.tags, "mlflow_run_id": record.run_id})
        experiment.add_tags([f"{key}:{value}" for key, value in sorted(record.tags.items())])
        experiment.log_metrics(record.metrics, step=0)
        for key, values in record.series.items():
            for step, value in enumerate(values):
                experiment.log_metric(key, value, step=step)
        for name, path in record.artifacts.items():
            if path.is_dir():
                experiment.log_model(f"{record.experiment}-{name}", str(path))
            elif path.is_file():
                experiment.log_asset(str(path), file_name=f"{name}{path.suffix}")
    finally:
        experiment.end()
