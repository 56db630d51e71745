"""Verify steps of the BentoML serving application (``serving=bentoml``).

They replace the core steps that speak the FastAPI app's routes: the service starts with
``bentoml serve`` and is ready when BentoML's ``/readyz`` answers; ``POST /predict`` takes
the same request as the FastAPI app, so the core ``predict ids`` and ``predict rows``
steps run unchanged against it; the rows are also checked against the champion's scores
computed offline; a malformed request must be refused with a 4xx and no stack trace;
BentoML's own ``/metrics`` must count the requests; ``bentoml build`` must build the Bento
offline (``lock_packages: false``, ``BENTOML_HOME`` outside the project).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import httpx

from ..serving.outputs import SCORE_HISTOGRAM, row_scores
from .runner import Context, Flag, StepFailed, child_env, free_port, start, wait_http
from .serving_app import (
    compare_scores,
    feature_rows,
    offline_scores,
    refused,
    scrape,
    total,
    wrong_value,
)

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
SERVICE = f"{__name__.partition('.')[0]}.serving.bento_service:ChurnService"
OFFLINE_ENV = {"BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": ""}


def _bentoml_env(ctx: Context, **extra: str) -> dict[str, str]:
    home = ctx.values.setdefault("bentoml_home", tempfile.mkdtemp(prefix="verify-bentoml-"))
    return child_env(ctx, **{**OFFLINE_ENV, "BENTOML_HOME": home, **extra})


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Start ``bentoml serve`` on 127.0.0.1; ready once ``/readyz`` is 200 with the champion."""
    port = free_port()
    from .core import otel_env

    env = _bentoml_env(ctx, MLFLOW_TRACKING_URI=ctx.values["tracking_uri"], **otel_env(ctx))
    command = [
        sys.executable, "-m", "bentoml", "serve", SERVICE,
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    service = start(ctx, "serving", command, env)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    wait_http(client, f"{url}/livez", service, timeout=ctx.ready_timeout)
    wait_http(client, f"{url}/readyz", service, timeout=ctx.ready_timeout)
    info = client.post(f"{url}/model_info", json={}).json()
    expected = (ctx.settings.model_name, ctx.values["champion"])
    if (info.get("model_name"), info.get("model_version")) != expected:
        raise StepFailed(f"/model_info serves {info}, expected {expected[0]} v{expected[1]}")
    ctx.values["serving_url"] = url
    return (
        f"{url} (bentoml) serves {expected[0]} v{expected[1]} ({info.get('runtime')}), "
        f"ready after {time.monotonic() - started:.0f} s"
    )


def step_offline_scores(ctx: Context, client: httpx.Client) -> str:
    """The service's scores of the snapshot rows equal the champion's, computed offline."""
    rows = feature_rows(ctx)
    response = client.post(f"{ctx.values['serving_url']}/predict", json={"rows": rows})
    if response.status_code != 200:
        raise StepFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        served = [s for item in response.json()["predictions"] for s in row_scores(item)]
    except ValueError as exc:
        raise StepFailed(f"BentoML /predict answered a row that does not fit: {exc}") from None
    return compare_scores(served, offline_scores(ctx, rows), "BentoML scores")


def step_bad_payload(ctx: Context, client: httpx.Client) -> str:
    """Malformed requests are refused with a 4xx, and the body shows no stack trace."""
    url = f"{ctx.values['serving_url']}/predict"
    name, wrong = wrong_value()
    row = feature_rows(ctx)[0]
    cases = {
        f"{name}={wrong!r}": {"rows": [{**row, name: wrong}]},
        "missing feature": {"rows": [{k: v for k, v in row.items() if k != name}]},
        "empty batch": {"rows": []},
        "no input": {},
    }
    codes = [
        f"{label}: {refused(client.post(url, json=body), label)}" for label, body in cases.items()
    ]
    return "; ".join(codes)


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """BentoML's ``/metrics`` counts the scored and the refused ``/predict`` requests."""
    samples = scrape(client, f"{ctx.values['serving_url']}/metrics")
    name = "bentoml_service_request_total"
    ok = total(samples, name, endpoint="/predict", http_response_code="200")
    bad = sum(
        v
        for labels, v in samples.get(name, [])
        if labels.get("endpoint") == "/predict"
        and labels.get("http_response_code", "").startswith("4")
    )
    if ok < 3 or bad < 1:
        raise StepFailed(f"{name}: {ok:.0f} ok and {bad:.0f} refused /predict requests counted")
    histogram = f"{SCORE_HISTOGRAM[0]}_count"
    scored = total(samples, histogram)
    if scored < 2 * len(ctx.values["snapshots"]):
        raise StepFailed(f"{histogram} = {scored}")
    return f"{name}: {ok:.0f} ok, {bad:.0f} refused /predict; {histogram} {scored:.0f}"


def step_bento_build(ctx: Context, client: httpx.Client) -> str:
    """``bentoml build`` builds the Bento of ``bentofile.yaml`` offline."""
    env = _bentoml_env(ctx)
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag", str(ctx.root)],
        cwd=ctx.root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise StepFailed(f"bentoml build failed: {(done.stderr or done.stdout)[-400:]}")
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    return f"built Bento {tag} in {env['BENTOML_HOME']}"
