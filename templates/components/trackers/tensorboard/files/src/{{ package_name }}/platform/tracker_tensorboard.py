"""TensorBoard: each run's metrics, params, tags and artifacts as an event file on disk.

A run lands in ``runs/tensorboard/<experiment>/<run name>-<MLflow run id>/``: its metrics
as scalars (float64 tensors, the values MLflow holds), a tuning run's trials as steps,
params and tags as a text table, and a copy of its artifacts (TensorBoard has no artifact
store or model registry: the MLflow registry serves the model). ``make tensorboard``
serves the directory on 127.0.0.1; nothing here opens a connection.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..config import Settings
from .trackers import RunRecord


def log_dir(settings: Settings) -> Path:
    """The directory TensorBoard reads: ``$TENSORBOARD_LOGDIR`` or ``runs/tensorboard``."""
    configured = os.environ.get("TENSORBOARD_LOGDIR")
    return Path(configured) if configured else settings.paths.root / "runs" / "tensorboard"


def run_dir(settings: Settings, record: RunRecord) -> Path:
    """The event directory of ``record`` (TensorBoard's run: ``<experiment>/<name>-<id>``)."""
    return log_dir(settings) / record.experiment / f"{record.name}-{record.run_id}"


def log_run(settings: Settings, record: RunRecord) -> None:
    """Write ``record`` as one TensorBoard run."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.plugins.text import metadata as text_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    target = run_dir(settings, record)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    writer = EventFileWriter(str(target))
    wall = time.time()

    def scalar(tag: str, value: float, step: int) -> None:
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, double_val=[value])
        meta = scalar_metadata.create_summary_metadata(display_name=tag, description="")
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)]
        )
        writer.add_event(event_pb2.Event(wall_time=wall, step=step, summary=summary))

    def text(tag: str, rows: dict[str, str]) -> None:
        table = "| key | value |\n|---|---|\n" + "".join(
            f"| {key} | {value} |\n" for key, value in sorted(rows.items())
        )
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[table.encode()])
        meta = text_metadata.create_summary_metadata(display_name=tag, description="")
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)]
        )
        writer.add_event(event_pb2.Event(wall_time=wall, step=0, summary=summary))

    for key, value in record.metrics.items():
        scalar(key, value, 0)
    for key, values in record.series.items():
        for step, value in enumerate(values):
            scalar(key, value, step)
    text("params", record.params)
    text("tags", {**record.tags, "mlflow_run_id": record.run_id})
    writer.close()
    for name, path in record.artifacts.items():
        copy = target / "artifacts" / name
        if path.is_dir():
            shutil.copytree(path, copy)
        elif path.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy.with_suffix(path.suffix))
