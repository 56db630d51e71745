"""Weights & Biases: each run's config, metrics, tags and artifacts, offline by default.

``WANDB_MODE=offline`` (.env.example, Makefile): runs are written under
``runs/wandb/offline-run-*/`` and uploaded later with ``wandb sync`` once
``WANDB_MODE=online`` and ``WANDB_API_KEY`` are set; no code changes. Params go to the
run's config, metrics to its history (step 0) and summary, a tuning run's trials to the
history by step, the tags to the config (``tags``) and as ``key:value`` run tags, the
model and report as W&B artifacts. W&B's model registry needs the server: the MLflow
registry serves the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Settings
from .trackers import RunRecord


def wandb_dir(settings: Settings) -> Path:
    """The directory W&B writes ``wandb/`` into: ``$WANDB_DIR`` or ``runs``."""
    configured = os.environ.get("WANDB_DIR")
    return Path(configured) if configured else settings.paths.root / "runs"


def log_run(settings: Settings, record: RunRecord) -> None:
    """Write ``record`` as one W&B run (offline unless ``WANDB_MODE`` says otherwise)."""
    import wandb

    directory = wandb_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT") or record.experiment,
        entity=os.environ.get("WANDB_ENTITY") or None,
        name=record.name,
        job_type=record.name,
        dir=str(directory),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config={**record.params, "mlflow_run_id": record.run_id, "tags": record.tags},
        tags=[f"{key}:{value}"[:64] for key, value in sorted(record.tags.items())],
        settings=wandb.Settings(
            silent=True,
            console="off",
            save_code=False,
            x_disable_stats=True,
            x_disable_machine_info=True,
        ),
        reinit="create_new",
    )
    try:
        steps = max((len(values) for values in record.series.values()), default=1)
        for step in range(steps):
            row = {k: v[step] for k, v in record.series.items() if step < len(v)}
            run.log({**record.metrics, **row} if step == 0 else row, step=step)
        run.summary.update(record.metrics)
        for name, path in record.artifacts.items():
            kind = "model" if name == "model" else "report"
            artifact = wandb.Artifact(f"{record.experiment}-{name}", type=kind)
            if path.is_dir():
                artifact.add_dir(str(path))
            else:
                artifact.add_file(str(path))
            run.log_artifact(artifact)
    finally:
        run.finish()
