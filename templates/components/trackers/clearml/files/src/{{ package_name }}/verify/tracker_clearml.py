"""The clearml step of ``verify``: the offline sessions read back as an import would.

``clearml runs``: for the last ``train`` and ``evaluate`` runs MLflow holds, the newest
session archive in ``runs/clearml/offline`` whose ``MLflow run`` section names that
MLflow run id is opened the way ``Task.import_offline_session`` reads it: ``task.json``
(the task: hyperparameters, tags, artifacts with their files under ``data/``) and
``metrics.jsonl`` (the scalar events): its scalars at iteration 0 are MLflow's values,
its params MLflow's, its tags hold the git commit, and the model (train) or the
evaluation report (evaluate) is an artifact whose file is in the archive.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..platform.tracker_clearml import cache_dir
from ..platform.trackers import mismatch, runs_to_check
from .runner import Context, Flag, StepFailed

FLAGS: tuple[Flag, ...] = ()


@dataclass
class ClearmlTask:
    """What an offline session holds that verify compares."""

    path: Path
    name: str = ""
    tags: list[str] = field(default_factory=list)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    scalars: dict[int, dict[str, float]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # key -> member of the zip


def read_session(path: Path) -> ClearmlTask:
    """Parse one offline session archive (``task.json`` and ``metrics.jsonl``)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise StepFailed(f"{path}: not a ClearML offline session ({error})") from error
    with archive:
        names = set(archive.namelist())
        if "task.json" not in names:
            raise StepFailed(f"{path}: not a ClearML offline session (no task.json)")
        data = json.loads(archive.read("task.json"))
        task = ClearmlTask(path, name=str(data.get("name")), tags=list(data.get("tags") or []))
        for section, params in (data.get("hyperparams") or {}).items():
            task.sections[section] = {k: str(v.get("value")) for k, v in params.items()}
        folder = os.path.join(str(data.get("offline_folder", "")), "data/")
        for artifact in (data.get("execution") or {}).get("artifacts") or []:
            member = "data/" + str(artifact["uri"]).replace(folder, "", 1)
            if member not in names:
                raise StepFailed(f"{path}: artifact {artifact['key']} has no file {member}")
            task.artifacts[str(artifact["key"])] = member
        lines = archive.read("metrics.jsonl").decode() if "metrics.jsonl" in names else ""
    for line in lines.splitlines():
        for event in json.loads(line) if line.strip() else []:
            if event.get("type") == "training_stats_scalar" and event["iter"] >= 0:
                step = task.scalars.setdefault(int(event["iter"]), {})
                step[str(event["metric"])] = float(event["value"])
    return task


def find_task(directory: Path, mlflow_run_id: str) -> ClearmlTask:
    """The newest offline session whose ``MLflow run`` section names ``mlflow_run_id``."""
    sessions = sorted(directory.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in sessions:
        task = read_session(path)
        if task.sections.get("MLflow run", {}).get("mlflow_run_id") == mlflow_run_id:
            return task
    raise StepFailed(f"no ClearML offline session in {directory} for MLflow run {mlflow_run_id}")


def step_runs(ctx: Context, client: httpx.Client) -> str:
    """The offline ClearML sessions hold MLflow's metric values, params, tags, artifacts."""
    directory = cache_dir(ctx.settings) / "offline"
    runs = runs_to_check(ctx.settings, ctx.values["tracking_uri"])
    wanted = {"train": "model", "evaluate": "evaluation_report"}
    checked = []
    for name, record in runs.items():
        task = find_task(directory, record.run_id)
        problem = mismatch(record, task.scalars.get(0, {}), task.tags)
        if problem:
            raise StepFailed(f"{task.path}: {problem}")
        if task.sections.get("MLflow") != record.params:
            raise StepFailed(f"{task.path}: params {task.sections.get('MLflow')} != MLflow's")
        if wanted[name] not in task.artifacts:
            raise StepFailed(f"{task.path}: no artifact {wanted[name]} in {sorted(task.artifacts)}")
        checked.append(f"{name} ({len(record.metrics)} metrics, {wanted[name]})")
    return f"offline sessions {', '.join(checked)} match MLflow"
