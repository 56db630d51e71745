"""Verify steps of the Triton serving application (``serving=triton``).

:mod:`..serving.triton_export` writes the champion's ONNX graph (in this environment),
then Triton (``.venv-triton``, ``make setup``) serves it on 127.0.0.1 on three free ports
(HTTP, gRPC, metrics). The steps replace the core steps that speak the FastAPI app's
routes: ready when ``/v2/health/ready`` and the champion version's ``ready`` answer and
the model's metadata declares one input per feature column; V2 inference of the snapshot
rows equal to the champion's scores computed offline with MLflow, in the task's output
fields (``outputs``: a binary row's label agrees with its probability and the threshold);
each row alone scored as in the batch; malformed requests refused with no stack trace (a
4xx where Triton checks the request against the model; its JSON parser's errors are 500s
in this Triton release, held to exactly that); Triton's metrics port counting the
inferences. By id: not served. Triton's model would have to read Feast, which does not
install beside PyTriton's numpy<2: rows only.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from ..schema import FEATURE_COLUMNS, LABEL_CLASSES
from ..serving import outputs, triton_server
from ..serving.triton_export import export
from . import serving_app
from .runner import Context, Flag, StepFailed, free_port, start
from .serving_app import (
    counted,
    export_champion,
    feature_rows,
    own_python,
    refused,
    scrape,
    src_env,
    total,
    wait_v2_model,
)

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
ENVIRONMENT = ".venv-triton"


def v2_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A V2 inference request of feature ``rows``: one ``[n, 1]`` input per column."""
    return serving_app.v2_request(rows, (1,))


def response_rows(body: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The V2 response's output tensors as ``count`` response rows of the task's fields."""
    tensors = {output["name"]: output for output in body.get("outputs", [])}
    if sorted(tensors) != sorted(outputs.OUTPUT_FIELDS):
        raise StepFailed(f"outputs {sorted(tensors)}, expected {sorted(outputs.OUTPUT_FIELDS)}")
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, tensor in tensors.items():
        data, shape = tensor["data"], tensor["shape"]
        width = len(LABEL_CLASSES) if name == "probabilities" else 1
        if shape != [count, width] or len(data) != count * width:
            raise StepFailed(f"output {name} has shape {shape} for {count} rows")
        for i, row in enumerate(rows):
            values = data[i * width : (i + 1) * width]
            row[name] = dict(zip(LABEL_CLASSES, values, strict=True)) if width > 1 else values[0]
    return rows


def served_scores(body: dict[str, Any], count: int) -> list[float]:
    """The numbers of every row (``outputs.row_scores``), each row's decision checked."""
    threshold = float(os.environ.get("CHURN_THRESHOLD", triton_server.DEFAULT_THRESHOLD))
    scores: list[float] = []
    for item in response_rows(body, count):
        try:
            scores.extend(outputs.row_scores(item))
            outputs.check_decision(item, threshold)
        except ValueError as exc:
            raise StepFailed(f"served row {item}: {exc}") from None
    return scores


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Export the champion's ONNX graph, start Triton on 127.0.0.1, wait for V2 readiness."""
    python = own_python(ctx, ENVIRONMENT)
    out = ctx.root / "build" / "verify-triton"
    name, version = export_champion(ctx, export, out)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    env = src_env(ctx)
    command = [
        str(python), "-m", triton_server.__name__,
        "--model-dir", str(out), "--host", "127.0.0.1", "--http-port", str(http_port),
        "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    service = start(ctx, "serving", command, env)
    url = f"http://127.0.0.1:{http_port}"
    started = time.monotonic()
    inputs = wait_v2_model(ctx, client, url, service, version)
    if sorted(inputs) != sorted(FEATURE_COLUMNS):
        raise StepFailed(f"{name} v{version} declares inputs {inputs}, expected {FEATURE_COLUMNS}")
    ctx.values["serving_url"] = url
    ctx.values["metrics_url"] = f"http://127.0.0.1:{metrics_port}/metrics"
    return (
        f"{url} (Triton, V2) serves {name} v{version} (onnx), grpc :{grpc_port}, "
        f"metrics :{metrics_port}; ready after {time.monotonic() - started:.0f} s"
    )


def infer(ctx: Context, client: httpx.Client, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """POST ``rows`` to the champion version's V2 ``infer``; the JSON answer (200 only)."""
    url = (
        f"{ctx.values['serving_url']}/v2/models/{ctx.settings.model_name}"
        f"/versions/{ctx.values['champion']}/infer"
    )
    return serving_app.v2_infer(client, url, v2_request(rows))


def step_predict(ctx: Context, client: httpx.Client) -> str:
    """V2 inference of the snapshot rows equals the champion's scores computed offline."""
    checked = serving_app.v2_predict(ctx, client, infer, served_scores, "Triton V2 scores")
    return f"{checked}; outputs {', '.join(outputs.OUTPUT_FIELDS)}"


def step_batch(ctx: Context, client: httpx.Client) -> str:
    """Each row scored alone gives the score it got in the batch (no cross-row effects)."""
    return serving_app.v2_single_rows(ctx, client, infer, served_scores)


PARSER_ERROR = 500
"""What Triton 2.51's HTTP frontend (bundled by PyTriton 0.7.0) answers to a body its JSON
parser rejects before any model sees it: 500 with a one-line ``{"error": ...}`` (later
Triton releases answer 400). Verify holds it to that exact answer, so a change shows."""


def bad_requests(url: str, base: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Malformed requests: label -> (url, body, the status class expected: 4xx or 500)."""
    request = v2_request(rows[:1])
    first, rest = request["inputs"][0], request["inputs"][1:]
    return {
        # refused by Triton's request checks against the model's configuration: 4xx
        "no inputs": (url, {"inputs": []}, "4xx"),
        "a missing feature": (url, {"inputs": rest}, "4xx"),
        "an unknown input": (url, {"inputs": [*request["inputs"], {**first, "name": "x"}]}, "4xx"),
        "a wrong datatype": (url, {"inputs": [{**first, "datatype": "BYTES", "data": ["x"]},
                                              *rest]}, "4xx"),
        "an unbatched shape": (url, {"inputs": [{**t, "shape": [1]} for t in request["inputs"]]},
                               "4xx"),
        "too many rows": (url, v2_request(rows[:1] * (triton_server.MAX_BATCH_SIZE + 1)), "4xx"),
        "unknown model": (f"{base}/no-such-model/infer", request, "4xx"),
        # rejected by Triton's JSON parser: PARSER_ERROR
        "a string in a numeric input": (url, {"inputs": [{**first, "data": ["x"]}, *rest]}, "500"),
        "shape and data disagree": (url, {"inputs": [{**first, "shape": [2, 1]}, *rest]}, "500"),
        "not JSON": (url, "{not json", "500"),
    }  # fmt: skip


def step_bad_payload(ctx: Context, client: httpx.Client) -> str:
    """Malformed V2 requests are refused, with no stack trace in the body.

    Requests the model's configuration refuses get a 4xx; bodies Triton's JSON parser
    rejects get its :data:`PARSER_ERROR` with a one-line error, and nothing is scored.
    """
    base = f"{ctx.values['serving_url']}/v2/models"
    cases = bad_requests(f"{base}/{ctx.settings.model_name}/infer", base, feature_rows(ctx))
    codes = []
    for label, (target, body, expected) in cases.items():
        if isinstance(body, str):
            response = client.post(
                target, content=body, headers={"content-type": "application/json"}
            )
        else:
            response = client.post(target, json=body)
        if expected == "4xx":
            codes.append(f"{label}: {refused(response, label)}")
            continue
        if response.status_code != PARSER_ERROR:
            raise StepFailed(f"{label}: HTTP {response.status_code}, expected {PARSER_ERROR}")
        error = response.json().get("error", "")
        if "\n" in error or "Traceback" in error or 'File "' in error:
            raise StepFailed(f"{label}: the error is not one line: {response.text[:300]}")
        codes.append(f"{label}: {response.status_code} (parser)")
    return "; ".join(codes)


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """Triton's metrics port counts this model version's successful inferences."""
    samples = scrape(client, ctx.values["metrics_url"])
    # Triton declares them counters: the parser names their samples with the _total suffix
    name = "nv_inference_request_success_total"
    labels = {"model": ctx.settings.model_name, "version": ctx.values["champion"]}
    count = counted(samples, name, 1 + len(ctx.values["snapshots"]), **labels)
    failures = total(samples, "nv_inference_request_failure_total", **labels)
    return (
        f"{name}={count:.0f}, nv_inference_request_failure_total={failures:.0f}"
        f" on {ctx.values['metrics_url']} ({len(samples)} samples)"
    )
