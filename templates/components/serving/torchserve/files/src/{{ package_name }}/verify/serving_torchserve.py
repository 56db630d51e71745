"""Verify steps of the TorchServe serving application (``serving=torchserve``).

:mod:`..serving.torchserve_export` writes the champion's ONNX graph and the archive's entry
point (in this environment), then :mod:`..serving.torchserve_server` (``.venv-torchserve``,
``make setup``) archives them and starts TorchServe on 127.0.0.1 on free ports (inference,
management, metrics, two gRPC, the worker's). TorchServe's handler speaks the project's
``/predict`` contract at ``/predictions/<model>/<version>`` (``ctx.values["predict_url"]``),
so the core steps run against it unchanged: by id through the handler's Feast lookup
(plus an unknown id), the same customers' rows equal to the by-id scores and to the
champion's scores computed offline with MLflow, and the core's invalid inputs refused with
a 422 naming the problem. These steps replace the FastAPI app's readiness and metrics and
add: ready when ``/ping`` answers and the management API shows the champion version with a
READY worker; each row alone scored as in the batch; more malformed requests refused with a
4xx and no stack trace (the handler's 422s, TorchServe's own 404); TorchServe's Prometheus
metrics port counting the inferences and the refusals.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..serving import outputs, torchserve_server
from ..serving.schemas import MAX_BATCH_ROWS
from ..serving.torchserve_export import export
from .core import _check_predictions, predict_url
from .runner import Context, Flag, StepFailed, free_port, start, wait_http
from .serving_app import (
    compare_scores,
    counted,
    export_champion,
    feature_rows,
    own_python,
    refused,
    scrape,
    src_env,
)

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
ENVIRONMENT = ".venv-torchserve"
PORTS = tuple(torchserve_server.PORT_DEFAULTS)


def worker_states(client: httpx.Client, url: str) -> list[str]:
    """The states of the workers that TorchServe's management API lists at ``url``."""
    described = client.get(url).json()
    return [str(w.get("status")) for entry in described for w in entry.get("workers", [])]


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Export and archive the champion, start TorchServe on 127.0.0.1, wait for its worker."""
    python = own_python(ctx, ENVIRONMENT)
    out = ctx.root / "build" / "verify-torchserve"
    name, version = export_champion(ctx, export, out)
    ports = {flag: free_port() for flag in PORTS}
    env = src_env(ctx)
    command = [str(python), "-m", torchserve_server.__name__, "--model-dir", str(out),
               "--host", "127.0.0.1"]  # fmt: skip
    for flag, port in ports.items():
        command += [f"--{flag.replace('_', '-')}", str(port)]
    service = start(ctx, "serving", command, env)
    url = f"http://127.0.0.1:{ports['http_port']}"
    management = f"http://127.0.0.1:{ports['management_port']}"
    started = time.monotonic()
    wait_http(client, f"{url}/ping", service, timeout=ctx.ready_timeout)
    described = f"{management}/models/{name}/{version}"
    wait_http(client, described, service, timeout=ctx.ready_timeout)
    workers = worker_states(client, described)
    while "READY" not in workers and time.monotonic() - started < ctx.ready_timeout:
        time.sleep(0.5)
        workers = worker_states(client, described)
    if "READY" not in workers:
        raise StepFailed(f"{name} v{version} has no READY worker: {workers}")
    ctx.values["serving_url"] = url
    ctx.values["predict_url"] = f"{url}/predictions/{name}/{version}"
    ctx.values["metrics_url"] = f"http://127.0.0.1:{ports['metrics_port']}/metrics"
    return (
        f"{url} (TorchServe) serves {name} v{version} (onnx, {name}.mar), management"
        f" :{ports['management_port']}, metrics :{ports['metrics_port']}; worker READY after"
        f" {time.monotonic() - started:.0f} s"
    )


def predict(ctx: Context, client: httpx.Client, rows: list[dict[str, Any]]) -> list[float]:
    """POST ``rows``; every row's scores (``outputs.row_scores``), each answer checked."""
    response = client.post(predict_url(ctx), json={"rows": rows})
    predictions = _check_predictions(ctx, response, len(rows))
    return [score for item in predictions for score in outputs.row_scores(item)]


def step_batch(ctx: Context, client: httpx.Client) -> str:
    """Each row scored alone gives the score its customer got by id (no cross-row effects)."""
    alone = []
    for row in feature_rows(ctx):
        alone.extend(predict(ctx, client, [row]))
    by_id = [score for scores in ctx.values["by_id"] for score in scores]
    return compare_scores(alone, by_id, "single-row TorchServe scores")


def bad_requests(ctx: Context) -> dict[str, tuple[str, Any, str]]:
    """Malformed requests beyond the core's: label -> (url, body, a word the error names)."""
    url = predict_url(ctx)
    rows = feature_rows(ctx)
    base = f"{ctx.values['serving_url']}/predictions"
    return {
        "an unknown feature": (url, {"rows": [{**rows[0], "x": 1}]}, "x"),
        "too many rows": (url, {"rows": rows[:1] * (MAX_BATCH_ROWS + 1)}, "rows"),
        "rows and ids": (url, {"rows": rows[:1], "customer_ids": [1]}, "exactly one"),
        "not JSON": (url, "{not json", "json"),
        "unknown model": (f"{base}/no-such-model", {"rows": rows[:1]}, ""),
    }


def step_refusals(ctx: Context, client: httpx.Client) -> str:
    """More malformed requests are refused with a 4xx and a one-line error, no stack trace."""
    codes = []
    for label, (target, body, named) in bad_requests(ctx).items():
        if isinstance(body, str):
            response = client.post(
                target, content=body, headers={"content-type": "application/json"}
            )
        else:
            response = client.post(target, json=body)
        codes.append(f"{label}: {refused(response, label)}")
        if not named:
            continue  # TorchServe's own answer
        error = str(response.json().get("error", ""))
        if named.lower() not in error.lower() or "\n" in error:
            raise StepFailed(f"{label}: error {error!r} is not one line naming {named!r}")
    return "; ".join(codes)


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """TorchServe's metrics port counts this model version's requests and the refusals."""
    samples = scrape(client, ctx.values["metrics_url"])
    name = "ts_inference_requests_total"
    labels = {"model_name": ctx.settings.model_name, "model_version": ctx.values["champion"]}
    count = counted(samples, name, 2 + len(ctx.values["snapshots"]), **labels)  # ids, rows, alone
    refusals = counted(samples, "Requests4XX_total", len(bad_requests(ctx)))
    return (
        f"{name}={count:.0f}, Requests4XX_total={refusals:.0f}"
        f" on {ctx.values['metrics_url']} ({len(samples)} samples)"
    )
