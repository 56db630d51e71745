"""Verify steps of the MLServer serving application (``serving=mlserver``).

MLServer (Seldon) runs from its own environment, ``.venv-mlserver`` (``make setup``), with
its MLflow runtime on the champion version, bound to 127.0.0.1 on three ports (HTTP,
gRPC, metrics). The steps replace the core steps that speak the FastAPI app's routes:
ready when the V2 ``/v2/health/ready`` and ``/v2/models/<name>/ready`` answer; V2
inference of the snapshot rows (``content_type: pd``) equal to the champion's scores
computed offline; malformed V2 requests refused with a 4xx and no stack trace; the
metrics port's ``/metrics`` counting the inferences. By id: MLServer's MLflow runtime
has no pre-processing step in which to read Feast, so ids are not served (rows only).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from ..schema import FEATURE_COLUMNS
from ..serving import outputs
from ..serving.mlserver_settings import write
from . import serving_app
from .runner import Context, Flag, StepFailed, child_env, free_port, start
from .serving_app import (
    counted,
    feature_rows,
    refused,
    scrape,
    wait_v2_model,
)

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
ENVIRONMENT = ".venv-mlserver"


def v2_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A V2 inference request of feature ``rows``: one input per column, decoded as pandas."""
    return serving_app.v2_request(rows, content_type="pd")


def served_scores(body: dict[str, Any], count: int) -> list[float]:
    """The task's scores in a V2 response, flattened like :func:`.serving_app.offline_scores`.

    MLServer's MLflow runtime answers the model's raw output as one tensor: ``predict_proba``
    (classifiers, ``[n, classes]``) or ``predict`` (regression, ``[n]`` or ``[n, 1]``);
    :func:`..serving.outputs.model_scores` shapes it for the task.
    """
    output = body["outputs"][0]
    data = np.asarray(output["data"], dtype=np.float64)
    try:
        scores = outputs.model_scores(data.reshape(output["shape"]), count)
    except ValueError as exc:
        raise StepFailed(f"V2 output shape {output['shape']}: {exc}") from None
    return [float(s) for s in scores.reshape(-1)]


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Start MLServer (``.venv-mlserver``) on 127.0.0.1; wait for V2 readiness of the champion."""
    mlserver = ctx.root / ENVIRONMENT / "bin" / "mlserver"
    if not mlserver.is_file():
        raise StepFailed(f"{mlserver} is missing: run 'make setup' (it builds {ENVIRONMENT})")
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    out = ctx.root / "build" / "verify-mlserver"
    name, version = ctx.settings.model_name, ctx.values["champion"]
    write(
        out, name, version,
        host="127.0.0.1", http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
    )  # fmt: skip
    env = child_env(ctx, MLFLOW_TRACKING_URI=ctx.values["tracking_uri"])
    env["PATH"] = f"{mlserver.parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ctx.root)  # mlserver_runtime.py
    service = start(ctx, "serving", [str(mlserver), "start", str(out)], env)
    url = f"http://127.0.0.1:{http_port}"
    started = time.monotonic()
    inputs = wait_v2_model(ctx, client, url, service, version)
    if inputs != FEATURE_COLUMNS:
        raise StepFailed(f"{name} v{version} declares inputs {inputs}, expected {FEATURE_COLUMNS}")
    ctx.values["serving_url"] = url
    ctx.values["metrics_url"] = f"http://127.0.0.1:{metrics_port}/metrics"
    return (
        f"{url} (MLServer, V2) serves {name} v{version}, grpc :{grpc_port}, "
        f"metrics :{metrics_port}; ready after {time.monotonic() - started:.0f} s"
    )


def infer(ctx: Context, client: httpx.Client, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """POST ``rows`` to the model's V2 ``infer``; the JSON answer (200 only)."""
    url = f"{ctx.values['serving_url']}/v2/models/{ctx.settings.model_name}/infer"
    return serving_app.v2_infer(client, url, v2_request(rows))


def step_predict(ctx: Context, client: httpx.Client) -> str:
    """V2 inference of the snapshot rows equals the champion's scores computed offline."""
    return serving_app.v2_predict(ctx, client, infer, served_scores, "MLServer V2 scores")


def step_batch(ctx: Context, client: httpx.Client) -> str:
    """Each row scored alone gives the score it got in the batch (no cross-row effects)."""
    return serving_app.v2_single_rows(ctx, client, infer, served_scores)


def step_bad_payload(ctx: Context, client: httpx.Client) -> str:
    """Malformed V2 requests are refused with a 4xx, and the body shows no stack trace."""
    url = f"{ctx.values['serving_url']}/v2/models/{ctx.settings.model_name}/infer"
    request = v2_request(feature_rows(ctx)[:1])
    wrong_type = {
        **request,
        "inputs": [{**request["inputs"][0], "data": ["x"]}, *request["inputs"][1:]],
    }
    cases = {
        "no inputs": {"parameters": {"content_type": "pd"}},
        "string in a numeric input": wrong_type,
        "unknown model": None,
    }
    codes = []
    for label, body in cases.items():
        if body is None:
            response = client.post(
                f"{ctx.values['serving_url']}/v2/models/no-such-model/infer", json=request
            )
        else:
            response = client.post(url, json=body)
        codes.append(f"{label}: {refused(response, label)}")
    return "; ".join(codes)


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """The metrics port's ``/metrics`` counts this model's successful inferences."""
    samples = scrape(client, ctx.values["metrics_url"])
    name = "model_infer_request_success_total"
    minimum = 1 + len(ctx.values["snapshots"])
    count = counted(samples, name, minimum, model=ctx.settings.model_name)
    return f"{name}={count:.0f} on {ctx.values['metrics_url']} ({len(samples)} samples)"
