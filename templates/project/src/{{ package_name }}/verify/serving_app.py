"""Checks shared by the serving applications' verify steps (any app, any protocol).

An app's step module (``serving_bentoml``, ``serving_mlserver``, ``serving_triton``)
starts its server and talks its protocol; these helpers hold what every app must prove the
same way: the champion's scores computed offline here, compared with what the server
answered, and error answers that are client errors without a stack trace; and, for the V2
(Open Inference Protocol) servers, the request of feature rows and the model's readiness.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_DTYPES
from ..serving import outputs
from .runner import Context, Service, StepFailed, child_env, wait_http

TOLERANCE = 1e-9
"""Largest difference allowed between a served and an offline score (as ``core``)."""


def own_python(ctx: Context, environment: str) -> Path:
    """The interpreter of a serving application's own environment (``make setup`` builds it)."""
    python = ctx.root / environment / "bin" / "python"
    if not python.is_file():
        raise StepFailed(f"{python} is missing: run 'make setup' (it builds {environment})")
    return python


def export_champion(
    ctx: Context, export: Callable[[str, str, Path], dict[str, str]], out: Path
) -> tuple[str, str]:
    """The champion written under ``out`` by a server's ``export``: (name, version)."""
    written = export(ctx.values["tracking_uri"], ctx.settings.model_name, out)
    name, version = written["name"], written["version"]
    if version != ctx.values["champion"]:
        raise StepFailed(f"exported v{version}, the champion is v{ctx.values['champion']}")
    return name, version


def src_env(ctx: Context) -> dict[str, str]:
    """:func:`.runner.child_env` with the package's ``src/`` first on ``PYTHONPATH``: a
    server's own environment imports the package from there (it is not installed)."""
    env = child_env(ctx)
    paths = [str(ctx.root / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return env


def feature_rows(ctx: Context) -> list[dict[str, Any]]:
    """The snapshots' feature rows (``core.newest_snapshots``), without the customer id."""
    return [{k: v for k, v in row.items() if k != ENTITY_COLUMN} for row in ctx.values["snapshots"]]


def offline_scores(ctx: Context, rows: list[dict[str, Any]]) -> list[float]:
    """The scores of ``rows`` by the registry's champion version, loaded here with MLflow.

    P(churn) per row (binary), every class's probability row after row (multiclass), or
    the predicted values (regression): :func:`..serving.outputs.model_scores`, flattened.
    """
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    mlflow.set_tracking_uri(ctx.values["tracking_uri"])
    uri = f"models:/{ctx.settings.model_name}/{ctx.values['champion']}"
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame(rows)[FEATURE_COLUMNS].astype(FEATURE_DTYPES)
    scores = outputs.model_scores(np.asarray(model.predict(frame)), len(frame))
    return [float(s) for s in scores.reshape(-1)]


def wrong_value() -> tuple[str, object]:
    """A feature of the contract and a value of the wrong type for it: a fraction for an
    integer, text for another number, a number for a category (the first int feature's,
    else the first feature's)."""
    name, dtype = next(
        ((n, d) for n, d in FEATURE_DTYPES.items() if d.startswith("int")),
        next(iter(FEATURE_DTYPES.items())),
    )
    return name, 1.5 if dtype.startswith("int") else 1 if dtype == "string" else "text"


def compare_scores(served: list[float], offline: list[float], what: str) -> str:
    """Fail unless ``served`` equals ``offline`` within :data:`TOLERANCE`."""
    if len(served) != len(offline):
        raise StepFailed(f"{what}: {len(served)} scores for {len(offline)} rows")
    worst = max(abs(a - b) for a, b in zip(served, offline, strict=True))
    if worst > TOLERANCE:
        raise StepFailed(f"{what} disagree with the champion offline by {worst:.3g}")
    return f"{len(served)} scores equal the champion's offline scores (max diff {worst:.1e})"


def refused(response: httpx.Response, label: str) -> str:
    """A client error (4xx) whose body carries no Python traceback; returns the status."""
    if not 400 <= response.status_code < 500:
        raise StepFailed(f"{label}: HTTP {response.status_code}, expected a 4xx")
    if "Traceback" in response.text or 'File "' in response.text:
        raise StepFailed(f"{label}: the error body shows a stack trace: {response.text[:300]}")
    return str(response.status_code)


Samples = dict[str, list[tuple[dict[str, str], float]]]
"""Prometheus samples by name: ``[(labels, value), ...]`` (:func:`metric_samples`)."""


def metric_samples(text: str) -> Samples:
    """Prometheus text exposition parsed to ``{sample name: [(labels, value), ...]}``."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


def v2_datatype(name: str) -> str:
    """The V2 tensor datatype of feature ``name``: INT64, FP64, or BYTES for a category."""
    dtype = FEATURE_DTYPES[name]
    return "INT64" if dtype.startswith("int") else "BYTES" if dtype == "string" else "FP64"


def v2_request(
    rows: list[dict[str, Any]], trailing: tuple[int, ...] = (), **parameters: str
) -> dict[str, Any]:
    """A V2 inference request of feature ``rows``: one input per feature column.

    Each input's shape is ``[len(rows), *trailing]`` (Triton's batched ``[n, 1]``,
    MLServer's ``[n]``); ``parameters`` (MLServer's ``content_type="pd"``) go with it.
    """
    request: dict[str, Any] = {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), *trailing],
                "datatype": v2_datatype(name),
                "data": [row[name] for row in rows],
            }
            for name in FEATURE_COLUMNS
        ]
    }
    if parameters:
        request["parameters"] = parameters
    return request


def wait_v2_model(
    ctx: Context, client: httpx.Client, url: str, service: Service, version: str
) -> list[str]:
    """Wait until the V2 server at ``url`` and the champion ``version`` are ready.

    Returns the input names the model's metadata declares (each server checks them).
    """
    wait_http(client, f"{url}/v2/health/ready", service, timeout=ctx.ready_timeout)
    model = f"{url}/v2/models/{ctx.settings.model_name}/versions/{version}"
    wait_http(client, f"{model}/ready", service, timeout=ctx.ready_timeout)
    metadata = client.get(model).json()
    return [str(tensor.get("name")) for tensor in metadata.get("inputs", [])]


def scrape(client: httpx.Client, url: str) -> Samples:
    """A server's Prometheus endpoint, fetched (200 only) and parsed."""
    response = client.get(url)
    if response.status_code != 200:
        raise StepFailed(f"{url}: HTTP {response.status_code}")
    return metric_samples(response.text)


def counted(samples: Samples, name: str, minimum: float, **labels: str) -> float:
    """:func:`total` of ``name`` over ``labels``; fails below ``minimum``, naming the samples."""
    count = total(samples, name, **labels)
    if count < minimum:
        found = sorted(samples)[:40]
        raise StepFailed(f"{name} for {labels} = {count} < {minimum:g}; samples: {found}")
    return count


V2Infer = Callable[[Context, httpx.Client, list[dict[str, Any]]], dict[str, Any]]
"""A server's V2 ``infer`` call: the rows in, the JSON answer out (200 only)."""
V2Scores = Callable[[dict[str, Any], int], list[float]]
"""A server's reading of its V2 answer: the scores of ``count`` rows."""


def v2_infer(client: httpx.Client, url: str, request: dict[str, Any]) -> dict[str, Any]:
    """POST a V2 ``request`` to ``url``; the JSON answer, failing the step on any other than 200."""
    response = client.post(url, json=request)
    if response.status_code != 200:
        raise StepFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def v2_predict(
    ctx: Context, client: httpx.Client, infer: V2Infer, scores: V2Scores, what: str
) -> str:
    """V2 inference of the snapshot rows equals the champion's scores computed offline.

    The answer must name the champion's version; its scores are kept for
    :func:`v2_single_rows`.
    """
    from .core import N_CUSTOMERS, newest_snapshots

    ctx.values["snapshots"] = newest_snapshots(ctx, N_CUSTOMERS)
    rows = feature_rows(ctx)
    body = infer(ctx, client, rows)
    if str(body.get("model_version")) != ctx.values["champion"]:
        raise StepFailed(f"model_version {body.get('model_version')!r} is not the champion")
    served = scores(body, len(rows))
    ctx.values["served"] = served
    return compare_scores(served, offline_scores(ctx, rows), what)


def v2_single_rows(ctx: Context, client: httpx.Client, infer: V2Infer, scores: V2Scores) -> str:
    """Each row scored alone gives the score it got in :func:`v2_predict`'s batch."""
    alone = []
    for row in feature_rows(ctx):
        alone.extend(scores(infer(ctx, client, [row]), 1))
    return compare_scores(alone, ctx.values["served"], "single-row V2 scores")
