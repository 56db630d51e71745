"""The neptune step of ``verify``: the offline runs read back from Neptune's own store.

``neptune runs``: for the last ``train`` and ``evaluate`` runs MLflow holds, the newest
offline store whose metadata names the Neptune run ``<name>-<MLflow run id>`` is read
back with the client's own ``OperationsRepository`` (the SQLite queue ``neptune sync``
uploads; its ``UpdateRunSnapshot`` protobufs): the step-0 values of its metric series are
MLflow's, its tags hold the git commit, and it assigned the model (train) or the
evaluation report (evaluate) as files whose copies are on disk for the upload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..platform.tracker_neptune import log_dir, run_id
from ..platform.trackers import mismatch, runs_to_check
from .runner import Context, Flag, StepFailed

FLAGS: tuple[Flag, ...] = ()
STORE = "run_operations.sqlite3"


@dataclass
class NeptuneRun:
    """What an offline run's store holds that verify compares."""

    path: Path
    run_id: str = ""
    configs: dict[str, object] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    series: dict[int, dict[str, float]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # attribute -> local source


def _value(value: Any) -> object:
    """A protobuf ``Value``'s content (``float64``, ``string``, ``file_ref`` path, ...)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    content = getattr(value, kind)
    return content.path if kind == "file_ref" else content


def read_run(path: Path) -> NeptuneRun:
    """Parse one offline store with the client's own repository and protobufs."""
    from neptune_scale.exceptions import NeptuneUnableToLogData
    from neptune_scale.sync.operations_repository import (
        MAX_SINGLE_OPERATION_SIZE_BYTES,
        OperationsRepository,
        OperationType,
    )

    if not path.is_file():
        raise StepFailed(f"{path}: no Neptune offline store")
    repository = OperationsRepository(db_path=path.resolve())
    try:
        try:
            metadata = repository.get_metadata()
        except NeptuneUnableToLogData as error:  # the client's wrapper of SQLite errors
            raise StepFailed(f"{path}: not a Neptune offline store ({error.__cause__})") from error
        if metadata is None:
            raise StepFailed(f"{path}: not a Neptune offline store (no run metadata)")
        run = NeptuneRun(path, run_id=metadata.run_id)
        last = None
        while True:
            operations = repository.get_operations(
                up_to_bytes=MAX_SINGLE_OPERATION_SIZE_BYTES, from_exclusive=last
            )
            if not operations:
                break
            for operation in operations:
                last = operation.sequence_id
                if operation.operation_type != OperationType.UPDATE_SNAPSHOT:
                    continue
                snapshot: Any = operation.operation
                for key, value in snapshot.assign.items():
                    run.configs[key] = _value(value)
                step = int(snapshot.step.whole) if snapshot.HasField("step") else 0
                for key, value in snapshot.append.items():
                    run.series.setdefault(step, {})[key] = float(_value(value))  # type: ignore[arg-type]
                tags = snapshot.modify_sets.get("sys/tags")
                if tags is not None:
                    run.tags.update(tags.string.values)
        sources = {
            request.destination: request.source_path
            for request in repository.get_file_upload_requests(1_000_000)
        }
    finally:
        repository.close(cleanup_files=False)
    for key, value in run.configs.items():
        if key.startswith("artifacts/"):
            run.files[key] = sources.get(str(value), "")
    return run


def find_run(directory: Path, neptune_run_id: str) -> NeptuneRun:
    """The newest offline store of run ``neptune_run_id`` under ``directory``."""
    stores = sorted(directory.glob(f"*_{neptune_run_id}_*/{STORE}"), key=lambda p: p.parent.name)
    for path in reversed(stores):
        run = read_run(path)
        if run.run_id == neptune_run_id:
            return run
    raise StepFailed(f"no Neptune offline store in {directory} for run {neptune_run_id}")


def step_runs(ctx: Context, client: httpx.Client) -> str:
    """The offline Neptune runs hold MLflow's metric values, tags and artifact files."""
    directory = log_dir(ctx.settings)
    runs = runs_to_check(ctx.settings, ctx.values["tracking_uri"])
    wanted = {"train": "artifacts/model/MLmodel", "evaluate": "artifacts/evaluation_report/"}
    checked = []
    for name, record in runs.items():
        run = find_run(directory, run_id(record))
        problem = mismatch(record, run.series.get(0, {}), run.tags)
        if problem:
            raise StepFailed(f"{run.path}: {problem}")
        if run.configs.get("mlflow_run_id") != record.run_id:
            raise StepFailed(f"{run.path}: mlflow_run_id is {run.configs.get('mlflow_run_id')}")
        files = [key for key in run.files if key.startswith(wanted[name])]
        if not files or not all(Path(run.files[key]).is_file() for key in files):
            raise StepFailed(f"{run.path}: no file {wanted[name]}* on disk (has {run.files})")
        checked.append(f"{name} ({len(record.metrics)} metrics, {len(files)} files)")
    return f"offline runs {', '.join(checked)} match MLflow"
