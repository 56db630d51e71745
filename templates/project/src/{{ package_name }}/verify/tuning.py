"""The tuning steps of ``verify``: the search report the `tune` stage wrote, read back.

``tuning report``: ``reports/tuning/report.json`` names every parameter of params.yaml's
search space with its importance, its best trial is the best of its trials and the one
``models/best_params.json`` hands to `train`, its trials are the MLflow runs nested under
the last ``tune`` run (same count, same scores), and ``search.png`` is a real PNG image
(signature, header, decoded by matplotlib to pixels that are not all one colour).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import httpx

from ..pipeline.metrics import LOWER_IS_BETTER
from ..pipeline.tune_report import REPORT_DIR, search_space
from .runner import Context, Flag, StepFailed

FLAGS: tuple[Flag, ...] = ()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path) -> tuple[int, int]:
    """``path`` is a PNG image of more than one colour; return its (width, height)."""
    import matplotlib.image
    import numpy as np

    data = path.read_bytes() if path.is_file() else b""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise StepFailed(f"{path} is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    pixels = np.asarray(matplotlib.image.imread(path))
    if pixels.shape[:2] != (height, width) or float(np.ptp(pixels)) == 0.0:
        raise StepFailed(f"{path}: {pixels.shape} pixels, all one colour or not {width}x{height}")
    return width, height


def trial_runs(tracking_uri: str, run_id: str) -> dict[str, float]:
    """MLflow run id -> the metric of each trial run nested under tuning run ``run_id``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        max_results=10000,
    )
    metrics = [key for key in parent.data.metrics if key.startswith("best_")]
    key = metrics[0].removeprefix("best_") if metrics else ""
    nan = float("nan")
    return {child.info.run_id: float(child.data.metrics.get(key, nan)) for child in children}


def step_report(ctx: Context, client: httpx.Client) -> str:
    """The search report names the parameters, its best trial and plot are real."""
    directory = ctx.root / REPORT_DIR
    try:
        report: dict[str, Any] = json.loads((directory / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise StepFailed(f"no readable {directory / 'report.json'}: {exc}") from None
    names = list(search_space(ctx.settings.params["tune"]))
    if report.get("parameters") != names or sorted(report.get("importance", {})) != sorted(names):
        raise StepFailed(f"report names {report.get('importance')}, the search space {names}")
    trials = report["trials"]
    best = report["best_trial"]
    pick = min if str(report["metric"]).removeprefix("cv_") in LOWER_IS_BETTER else max
    if best["value"] != pick(float(trial["value"]) for trial in trials):
        raise StepFailed(f"best trial {best} is not the best of {len(trials)} trials")
    tuned = json.loads(ctx.settings.paths.best_params.read_text(encoding="utf-8"))
    if any(tuned["params"][name] != best["params"][name] for name in names):
        raise StepFailed(f"best_params.json {tuned['params']} is not best trial {best['params']}")
    logged = trial_runs(ctx.values["tracking_uri"], str(tuned["run_id"]))
    reported = {str(trial["run_id"]): float(trial["value"]) for trial in trials}
    if logged != reported:
        raise StepFailed(f"{len(reported)} trials in the report, MLflow holds {len(logged)}")
    width, height = check_png(directory / str(report["plot"]))
    return (
        f"{len(trials)} trials (MLflow alike), best #{best['number']} {report['metric']} "
        f"{best['value']:.4f}, importance {report['importance']}, {width}x{height} plot"
    )
