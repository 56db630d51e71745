"""ClearML: each run as a task with its parameters, scalars, tags and artifacts, offline.

``CLEARML_OFFLINE_MODE=1`` (.env.example, Makefile): a run is a ClearML offline session,
``runs/clearml/offline/<task id>/`` and its archive ``<task id>.zip``, imported later into
a server with ``Task.import_offline_session`` (``make clearml-import``) once
``CLEARML_API_HOST`` and its keys are set; ``CLEARML_OFFLINE_MODE=0`` logs live: no code
changes. Params go to the ``MLflow`` hyperparameter section, tags (with the MLflow run id)
to ``MLflow run`` and as ``key:value`` task tags, metrics as scalars at iteration 0 and as
single values, a tuning run's trials by iteration, the model and report as artifacts.

Offline means offline: repository detection is off (``detect_repository``: it also starts
ClearML's update check, a request to its update server that no setting disables; when it
runs offline it fails after its 3 s timeout without harm) and so are framework hooks,
stream capture and resource monitoring. The reporter runs in a thread, not a subprocess
(``clearml.conf`` below), so closing a task takes well under a second, not ~12 s.
ClearML's model registry needs the server: the MLflow registry serves the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Settings
from .trackers import RunRecord

#: ``clearml.conf`` used unless ``CLEARML_CONFIG_FILE`` names another: an in-thread reporter.
CONFIG = """\
# Written by tracker_clearml.py; set CLEARML_CONFIG_FILE to use another file.
sdk {
  development {
    report_use_subprocess: false
    worker { log_stdout: false }
  }
}
"""
#: Every framework hook and the repository detection (which runs the update check), off.
FRAMEWORKS = (
    "matplotlib", "tensorflow", "tensorboard", "pytorch", "xgboost", "scikit", "fastai",
    "lightgbm", "hydra", "detect_repository", "tfdefines", "joblib", "megengine",
    "catboost", "gradio", "jsonargparse",
)  # fmt: skip


def cache_dir(settings: Settings) -> Path:
    """ClearML's cache (sessions in ``offline/``): ``$CLEARML_CACHE_DIR`` or ``runs/clearml``."""
    configured = os.environ.get("CLEARML_CACHE_DIR")
    return Path(configured) if configured else settings.paths.root / "runs" / "clearml"


def offline() -> bool:
    """Whether ``CLEARML_OFFLINE_MODE`` keeps tasks offline (the default)."""
    return os.environ.get("CLEARML_OFFLINE_MODE", "1").strip().lower() not in {"0", "false", "no"}


def _configure(settings: Settings) -> None:
    """Point ClearML at the project's cache and config before it is imported."""
    directory = cache_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CLEARML_CACHE_DIR", str(directory))
    if not os.environ.get("CLEARML_CONFIG_FILE"):
        config = directory / "clearml.conf"
        if not config.is_file() or config.read_text(encoding="utf-8") != CONFIG:
            config.write_text(CONFIG, encoding="utf-8")
        os.environ["CLEARML_CONFIG_FILE"] = str(config)


def log_run(settings: Settings, record: RunRecord) -> None:
    """Write ``record`` as one ClearML task (an offline session unless set online)."""
    _configure(settings)
    from clearml import Task

    Task.set_offline(offline_mode=offline())
    task: Task = Task.init(
        project_name=os.environ.get("CLEARML_PROJECT") or record.experiment,
        task_name=record.name,
        task_type=Task.TaskTypes.training,
        tags=[f"{key}:{value}" for key, value in sorted(record.tags.items())],
        reuse_last_task_id=False,
        continue_last_task=False,
        auto_connect_frameworks=dict.fromkeys(FRAMEWORKS, False),
        auto_connect_arg_parser=False,
        auto_connect_streams=False,
        auto_resource_monitoring=False,
    )
    try:
        task.connect(dict(record.params), name="MLflow")
        task.connect({**record.tags, "mlflow_run_id": record.run_id}, name="MLflow run")
        logger = task.get_logger()
        for key, value in record.metrics.items():
            logger.report_scalar(title=key, series=key, value=value, iteration=0)
            logger.report_single_value(key, value)
        for key, values in record.series.items():
            for step, value in enumerate(values):
                logger.report_scalar(title=key, series=key, value=value, iteration=step)
        for name, path in record.artifacts.items():
            if path.exists():
                task.upload_artifact(name, artifact_object=path, wait_on_upload=True)
        logger.flush()
    finally:
        task.close()
