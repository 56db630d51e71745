"""The wandb step of ``verify``: the offline runs read back from W&B's own run files.

``wandb runs``: for the last ``train`` and ``evaluate`` runs MLflow holds, the newest
offline W&B run whose config names that MLflow run id is read back from its ``.wandb``
file (W&B's transaction log: a LevelDB-style record log of ``wandb.proto`` ``Record``
messages, the file ``wandb sync`` uploads): its history at step 0 holds every metric with
MLflow's value, its tags the git commit, and it logged the model (train) or the
evaluation report (evaluate) as an artifact.

``wandb trials`` (with a tuning stage): every trial of the last search, an MLflow run nested
under the ``tune`` run, is an offline W&B run with the same score, none missing.

``wandb sweep``: ``wandb-sweeps/sweep.yaml`` (the `sweep` stage) is the search space of this
params.yaml and W&B's ``sweeps`` library validates it and proposes a run inside it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..pipeline.sweep import SWEEP_FILE, sweep_config
from ..platform.tracker_wandb import wandb_dir
from ..platform.trackers import differences, mismatch, runs_to_check
from .runner import Context, Flag, StepFailed

FLAGS: tuple[Flag, ...] = ()
BLOCK = 32768  # the log's block size
HEADER = struct.Struct("<IHB")  # a chunk: checksum, length, type (1 full, 2 first, 3, 4 last)
FILE_HEADER = struct.Struct("<4sHB")  # b":W&B", 0xBEE1, version 0


@dataclass
class WandbRun:
    """What an offline run's ``.wandb`` file holds that verify compares."""

    path: Path
    config: dict[str, object] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    history: dict[int, dict[str, float]] = field(default_factory=dict)
    artifacts: dict[str, list[str]] = field(default_factory=dict)


def records(path: Path) -> Iterator[bytes]:
    """The serialized records of a ``.wandb`` transaction log, chunks joined."""
    data = path.read_bytes()
    ident, magic, _ = FILE_HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise StepFailed(f"{path}: not a W&B transaction log")
    position, parts = FILE_HEADER.size, []
    while position + HEADER.size <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER.size:
            position += left  # the block's zero padding
            continue
        _, length, kind = HEADER.unpack_from(data, position)
        if kind == 0 and length == 0:
            position += left
            continue
        start = position + HEADER.size
        parts.append(data[start : start + length])
        position = start + length
        if kind in (1, 4):
            yield b"".join(parts)
            parts = []


def _key(item: Any) -> str:
    """An item's key: ``key``, or its ``nested_key`` parts joined by ``/``."""
    return str(item.key) or "/".join(item.nested_key)


def read_run(path: Path) -> WandbRun:
    """Parse an offline run's ``.wandb`` file with W&B's own protobuf messages."""
    from wandb.proto import wandb_internal_pb2

    run = WandbRun(path)
    for raw in records(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # protobuf-generated
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.tags = list(record.run.tags)
            config = record.run.config.update
            run.config = {_key(item): json.loads(item.value_json) for item in config}
        elif kind == "history":
            values = {_key(item): json.loads(item.value_json) for item in record.history.item}
            step = int(values.get("_step", record.history.step.num))
            run.history.setdefault(step, {}).update(
                {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
            )
        elif kind == "artifact":
            files = [entry.path for entry in record.artifact.manifest.contents]
            run.artifacts[record.artifact.name] = files
    return run


def find_run(directory: Path, mlflow_run_id: str) -> WandbRun:
    """The newest offline run whose config names ``mlflow_run_id``."""
    for path in sorted(directory.glob("offline-run-*/run-*.wandb"), reverse=True):
        run = read_run(path)
        if run.config.get("mlflow_run_id") == mlflow_run_id:
            return run
    raise StepFailed(f"no offline W&B run in {directory} for MLflow run {mlflow_run_id}")


def step_runs(ctx: Context, client: httpx.Client) -> str:
    """The offline W&B runs hold MLflow's metric values, tags and artifacts."""
    directory = wandb_dir(ctx.settings) / "wandb"
    runs = runs_to_check(ctx.settings, ctx.values["tracking_uri"])
    wanted = {"train": "model", "evaluate": "evaluation_report"}
    checked = []
    for name, record in runs.items():
        run = find_run(directory, record.run_id)
        problem = mismatch(record, run.history.get(0, {}), run.tags, tag_limit=64)
        if problem:
            raise StepFailed(f"{run.path}: {problem}")
        artifact = f"{record.experiment}-{wanted[name]}"
        if not run.artifacts.get(artifact):
            raise StepFailed(f"{run.path}: no artifact {artifact} (has {sorted(run.artifacts)})")
        checked.append(f"{name} ({len(record.metrics)} metrics, {artifact})")
    return f"offline runs {', '.join(checked)} match MLflow"


def step_trials(ctx: Context, client: httpx.Client) -> str:
    """Every trial of the last search is an offline W&B run with MLflow's score.

    The trials are the MLflow runs nested under the ``tune`` run of
    ``models/best_params.json``; each must have its own W&B run (config ``mlflow_run_id``)
    whose history holds the trial's metric with the value MLflow has, and no trial of
    that search may be missing or counted twice.
    """
    from mlflow import MlflowClient

    tuned = json.loads(ctx.settings.paths.best_params.read_text(encoding="utf-8"))
    tracking = MlflowClient(ctx.values["tracking_uri"])
    parent = tracking.get_run(str(tuned["run_id"]))
    children = tracking.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        max_results=10000,
    )
    if not children:
        raise StepFailed(f"no trial runs under the tuning run {parent.info.run_id} in MLflow")
    wanted = {child.info.run_id: dict(child.data.metrics) for child in children}
    found: dict[str, WandbRun] = {}
    for path in sorted((wandb_dir(ctx.settings) / "wandb").glob("offline-run-*/run-*.wandb")):
        run = read_run(path)
        mlflow_id = run.config.get("mlflow_run_id")
        if isinstance(mlflow_id, str) and mlflow_id in wanted:
            if mlflow_id in found:
                raise StepFailed(f"two W&B runs for trial run {mlflow_id}: {path}")
            found[mlflow_id] = run
    if len(found) != len(wanted):
        raise StepFailed(
            f"{len(wanted)} trial runs in MLflow, {len(found)} offline W&B runs of them"
        )
    for run_id, metrics in wanted.items():
        problems = differences(metrics, found[run_id].history.get(0, {}))
        if problems:
            raise StepFailed(f"{found[run_id].path}: disagrees with MLflow: {problems[:3]}")
    return f"{len(wanted)} trials in MLflow = {len(found)} offline W&B runs, same scores"


def step_sweep(ctx: Context, client: httpx.Client) -> str:
    """wandb-sweeps/sweep.yaml is params.yaml's search space, valid for W&B's sweep library."""
    import warnings

    import yaml

    with warnings.catch_warnings():  # sweeps 0.2.0 still uses pydantic v1-style config
        warnings.simplefilter("ignore")
        import sweeps

    path = ctx.root / SWEEP_FILE
    if not path.is_file():
        raise StepFailed(f"no {SWEEP_FILE} (the sweep stage of dvc.yaml writes it)")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if config != sweep_config(ctx.settings.params):
        raise StepFailed(f"{SWEEP_FILE} is not params.yaml's search space: run dvc repro")
    problems = sweeps.schema_violations_from_proposed_config(config)
    if problems:
        raise StepFailed(f"{SWEEP_FILE}: {problems[:3]}")
    proposal = sweeps.next_run(config, [], validate=True)
    if proposal is None or set(proposal.config) != set(config["parameters"]):
        raise StepFailed(f"{SWEEP_FILE}: the sweep library proposes {proposal}")
    drawn = ", ".join(f"{key}={item['value']}" for key, item in sorted(proposal.config.items()))
    return f"{SWEEP_FILE} valid ({config['method']}); the library's first proposal: {drawn}"
