"""The comet step of ``verify``: the offline archives read back and checked like an upload.

``comet runs``: for the last ``train`` and ``evaluate`` runs MLflow holds, the newest
archive in ``runs/comet`` whose "others" name that MLflow run id is opened (the zip
``comet upload`` sends: ``experiment.json`` and the ``messages.json`` lines); its
experiment file and every metric, parameter, other and file message pass Comet's own
JSON schemas (the validation ``comet upload`` runs first), its step-0 metrics are
MLflow's values, its tags hold the git commit, and the model (train) or the evaluation
report (evaluate) is in the archive.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..platform.tracker_comet import offline_dir
from ..platform.trackers import mismatch, runs_to_check
from .runner import Context, Flag, StepFailed

FLAGS: tuple[Flag, ...] = ()


@dataclass
class CometRun:
    """What an offline archive holds that verify compares."""

    path: Path
    tags: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    others: dict[str, str] = field(default_factory=dict)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # logged name -> member of the zip


def read_archive(path: Path) -> CometRun:
    """Parse one offline archive, validating it with Comet's own message schemas."""
    from comet_ml import schemas
    from jsonschema import ValidationError

    validators = {
        "metric_msg": schemas.get_metric_msg_validator(),
        "parameter_msg": schemas.get_parameter_msg_validator(),
        "log_other": schemas.get_log_other_msg_validator(),
        "file_upload": schemas.get_upload_msg_validator(),
    }
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise StepFailed(f"{path}: not a Comet offline archive ({error})") from error
    with archive:
        names = set(archive.namelist())
        if not {"experiment.json", "messages.json"} <= names:
            raise StepFailed(f"{path}: not a Comet offline archive (has {sorted(names)[:5]})")
        experiment = json.loads(archive.read("experiment.json"))
        run = CometRun(path, tags=list(experiment.get("tags") or []))
        try:
            schemas.get_experiment_file_validator().validate(experiment)
            lines = archive.read("messages.json").decode().splitlines()
            for offset, line in enumerate(lines, start=1):
                message: dict[str, Any] = json.loads(line)
                kind, payload = message["type"], message["payload"]
                if kind == "metric_msg":  # the uploader adds the line number to metrics
                    validators[kind].validate({**payload, "offset": offset})
                elif kind in validators:
                    validators[kind].validate(payload)
                if kind == "metric_msg":
                    metric = payload["metric"]
                    step = int(metric["step"] or 0)
                    value = float(metric["metricValue"])
                    run.metrics.setdefault(step, {})[metric["metricName"]] = value
                elif kind == "parameter_msg" and payload["param"]["source"] == "manual":
                    run.params[payload["param"]["paramName"]] = str(payload["param"]["paramValue"])
                elif kind == "log_other":
                    run.others[payload["key"]] = str(payload["value"])
                elif kind == "file_upload":
                    if payload["file_path"] not in names:
                        raise StepFailed(f"{path}: {payload['file_path']} not in the archive")
                    logged = payload["additional_params"]["fileName"]
                    run.files[logged] = payload["file_path"]
        except ValidationError as error:
            raise StepFailed(f"{path}: Comet would refuse it: {error.message}") from error
    return run


def find_run(directory: Path, mlflow_run_id: str) -> CometRun:
    """The newest offline archive whose "others" name ``mlflow_run_id``."""
    archives = sorted(directory.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in archives:
        run = read_archive(path)
        if run.others.get("mlflow_run_id") == mlflow_run_id:
            return run
    raise StepFailed(f"no Comet offline archive in {directory} for MLflow run {mlflow_run_id}")


def step_runs(ctx: Context, client: httpx.Client) -> str:
    """The offline Comet archives hold MLflow's metric values, tags and artifacts."""
    directory = offline_dir(ctx.settings)
    runs = runs_to_check(ctx.settings, ctx.values["tracking_uri"])
    wanted = {"train": "MLmodel", "evaluate": "evaluation_report.json"}
    checked = []
    for name, record in runs.items():
        run = find_run(directory, record.run_id)
        problem = mismatch(record, run.metrics.get(0, {}), run.tags)
        if problem:
            raise StepFailed(f"{run.path}: {problem}")
        if run.params != record.params:
            raise StepFailed(f"{run.path}: params {run.params} != MLflow's {record.params}")
        if not any(Path(logged).name == wanted[name] for logged in run.files):
            raise StepFailed(f"{run.path}: no {wanted[name]} in {sorted(run.files)}")
        checked.append(f"{name} ({len(record.metrics)} metrics, {wanted[name]})")
    return f"offline archives {', '.join(checked)} match MLflow"
