"""The core steps of ``verify`` (every project) and their plans, native and against a stack.

:mod:`.runner` runs them; :mod:`.plan` (rendered from the answers) adds the
steps the chosen components contribute. See :mod:`.runner` for what each step checks.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ..config import EXPERIMENT_NAME, MODEL_ALIAS
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_DTYPES, TIMESTAMP_COLUMN
from ..serving import outputs
from .runner import (
    Context,
    Flag,
    PlanStep,
    Service,
    StepFailed,
    child_env,
    free_port,
    start,
    stop,
    wait_http,
)
from .serving_app import compare_scores, offline_scores, wrong_value

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
N_CUSTOMERS = 5
EXPECTED_METRICS = (
    "http_requests_total",
    "http_request_duration_seconds",
    outputs.SCORE_HISTOGRAM[0],
    "prediction_rows_total",
    "model_info",
    "model_ready",
    "data_drift_share",
)


def step_mlflow(ctx: Context, client: httpx.Client) -> str:
    """Start ``mlflow server`` (one worker, no job runner) and wait for ``/health``.

    Artifacts go to ``mlartifacts/``, or where an earlier step put them in
    ``ctx.values["mlflow_artifacts"]`` (the server's arguments and environment).
    """
    root = ctx.root
    (root / "mlartifacts").mkdir(exist_ok=True)
    port = free_port()
    local: tuple[list[str], dict[str, str]] = (
        ["--default-artifact-root", (root / "mlartifacts").as_uri()],
        {},
    )
    artifacts, artifact_env = ctx.values.get("mlflow_artifacts", local)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        *artifacts,
        "-w", "1",
    ]  # fmt: skip
    extra = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **artifact_env}
    return start_mlflow(ctx, client, port, command, extra)


def start_mlflow(
    ctx: Context, client: httpx.Client, port: int, command: Sequence[str], extra: dict[str, str]
) -> str:
    """Start the MLflow server ``command`` listening on ``port``, wait for ``/health``.

    Shared by the step modules whose ``mlflow server`` step starts it another way.
    """
    service = start(ctx, "mlflow", command, child_env(ctx, **extra))
    url = f"http://127.0.0.1:{port}"
    wait_http(client, f"{url}/health", service, timeout=90)
    ctx.values["tracking_uri"] = url
    return url


def _warm_mlflow_client(tracking_uri: str) -> None:
    try:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri, tracking_uri).get_model_version_by_alias(
            "verify-warm-up-no-such-model", MODEL_ALIAS
        )
    except Exception:  # expected (no such model); the champion step reports real errors
        return


def step_repro(ctx: Context, client: httpx.Client) -> str:
    """Run ``dvc repro`` (forced unless ``--no-force``) against the tracking server."""
    command = [sys.executable, "-m", "dvc", "repro", *(["-f"] if ctx.force else [])]
    extra = {"MLFLOW_TRACKING_URI": ctx.values["tracking_uri"], **otel_env(ctx)}
    if ctx.stack and not os.environ.get("MLFLOW_ARTIFACT_LOCATION"):
        # the stack's MLflow serves the artifacts: a new experiment stores them through it
        extra["MLFLOW_ARTIFACT_LOCATION"] = f"mlflow-artifacts:/{EXPERIMENT_NAME}"
    env = child_env(ctx, **extra)
    service = start(ctx, "dvc-repro", command, env)
    # The next step needs the MLflow client, whose first registry call costs ~5 s of
    # imports: pay them now, on the second core, while the pipeline runs.
    threading.Thread(
        target=_warm_mlflow_client, args=(ctx.values["tracking_uri"],), daemon=True
    ).start()
    try:
        code = service.process.wait(timeout=ctx.repro_timeout)
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"dvc repro still running after {ctx.repro_timeout:.0f} s") from exc
    finally:
        stop(ctx.services.pop("dvc-repro"))
    log = service.log.read_text(encoding="utf-8", errors="replace")
    ran = [
        line.split("'")[1]
        for line in log.splitlines()
        if line.startswith("Running stage '") and line.count("'") >= 2
    ]
    if code != 0:
        raise StepFailed(f"dvc repro exited with code {code} (see {service.log})")
    summary = f"ran {len(ran)} stage(s): {', '.join(ran)}" if ran else "all stages up to date"
    return f"{' '.join(command[2:])}: {summary}"


def step_champion(ctx: Context, client: httpx.Client) -> str:
    """The registry holds a READY ``champion`` version of the configured model."""
    from mlflow import MlflowClient

    name = ctx.settings.model_name
    registry = MlflowClient(ctx.values["tracking_uri"], ctx.values["tracking_uri"])
    version = registry.get_model_version_by_alias(name, MODEL_ALIAS)
    if str(version.status) != "READY":
        raise StepFailed(f"{name}@{MODEL_ALIAS} is version {version.version} in {version.status}")
    ctx.values["champion"] = str(version.version)
    fresh = version.creation_timestamp >= ctx.values["started_ms"]
    origin = "registered by this run" if fresh else "kept from an earlier run"
    return f"{name}@{MODEL_ALIAS} = version {version.version} ({origin}), run {version.run_id}"


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Start the API with uvicorn and wait until ``/ready`` reports the champion version."""
    port = free_port()
    env = child_env(
        ctx,
        MLFLOW_TRACKING_URI=ctx.values["tracking_uri"],
        SERVING_HOST="127.0.0.1",
        SERVING_PORT=str(port),
        **otel_env(ctx),
    )
    serving = f"{__name__.partition('.')[0]}.serving"  # the project's package, next to verify
    service = start(ctx, "serving", [sys.executable, "-m", serving], env)
    return _serving_ready(ctx, client, f"http://127.0.0.1:{port}", service)


def _serving_ready(ctx: Context, client: httpx.Client, url: str, service: Service | None) -> str:
    """Wait for ``/health`` and ``/ready`` at ``url``; the API must serve the champion."""
    health = wait_http(client, f"{url}/health", service, timeout=ctx.ready_timeout)
    if health.json() != {"status": "ok"}:
        raise StepFailed(f"/health answered {health.text[:200]}")
    ready = wait_http(client, f"{url}/ready", service, timeout=ctx.ready_timeout).json()
    expected = (ctx.settings.model_name, ctx.values["champion"])
    if (ready.get("model_name"), ready.get("model_version")) != expected:
        raise StepFailed(f"/ready serves {ready}, expected {expected[0]} v{expected[1]}")
    ctx.values["serving_url"] = url
    return (
        f"{url} serves {expected[0]} v{expected[1]} ({ready.get('runtime')}),"
        f" feature store {ready.get('feature_store')}"
    )


def otel_env(ctx: Context) -> dict[str, str]:
    """Point a child's traces at the collector of step ``otel collector`` (when it runs)."""
    endpoint = ctx.values.get("otlp_endpoint")
    if endpoint is None:
        return {}
    # export every 200 ms rather than 5 s, so the spans are there when "traces" looks
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}


def rotel_agent() -> Path:
    """The collector binary of the pinned ``rotel`` wheel (dev dependency)."""
    import importlib.util

    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        raise StepFailed("rotel is not installed (make setup installs the dev dependencies)")
    agent = Path(next(iter(spec.submodule_search_locations))) / "rotel-agent"
    if not agent.is_file():
        raise StepFailed(f"{agent} is missing from the rotel wheel")
    return agent


def step_collector(ctx: Context, client: httpx.Client) -> str:
    """Start rotel, an OTLP collector, on 127.0.0.1; it logs every span it receives."""
    http_port, grpc_port = free_port(), free_port()
    command = [
        str(rotel_agent()),
        "start",
        "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
        "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
        "--exporter", "blackhole",
        "--debug-log", "traces",
        "--debug-log-verbosity", "detailed",
    ]  # fmt: skip
    service = start(ctx, "otel-collector", command, child_env(ctx))
    deadline = time.monotonic() + 30
    while True:
        if service.process.poll() is not None:
            raise StepFailed(f"rotel exited with code {service.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", http_port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise StepFailed("rotel did not listen within 30 s") from None
            time.sleep(0.1)
    ctx.values["otlp_endpoint"] = f"http://127.0.0.1:{http_port}"
    return f"rotel {ctx.values['otlp_endpoint']} (OTLP/HTTP); serving and the stages export to it"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def received_spans(log: str) -> list[dict[str, str]]:
    """The spans of rotel's debug log: name, id, parent id, trace id and service name."""
    spans: list[dict[str, str]] = []
    service = ""
    current: dict[str, str] | None = None
    for raw in log.splitlines():
        line = _ANSI.sub("", raw).strip()
        if line.startswith("-> service.name: Str("):
            service = line.removeprefix("-> service.name: Str(").removesuffix(")")
        elif line.startswith("Span #"):
            current = {"service": service}
            spans.append(current)
        elif current is not None and ":" in line:
            key, _, value = line.partition(":")
            field = {"Trace ID": "trace", "Parent ID": "parent", "ID": "id", "Name": "name"}
            if key.strip() in field:
                current[field[key.strip()]] = value.strip()
    return spans


def traced_stages(spans: list[dict[str, str]]) -> list[str]:
    """The pipeline stages among ``spans`` (of :func:`received_spans`), sorted."""
    return sorted(
        s["name"].removeprefix("stage ")
        for s in spans
        if s.get("name", "").startswith("stage ") and s.get("service") == "pipeline"
    )


def step_stage_traces(ctx: Context, client: httpx.Client) -> str:
    """The collector received the pipeline stages' spans (for a server that exports none).

    The ``traces`` step of serving applications other than the FastAPI app: their
    requests are not traced by this project, the stages still are.
    """
    log_path = ctx.logs_dir / "otel-collector.log"
    spans = received_spans(log_path.read_text(encoding="utf-8", errors="replace"))
    stages = traced_stages(spans)
    if not stages and ctx.force:
        raise StepFailed(f"no stage spans among {len(spans)} received (see {log_path})")
    return (
        f"{len(spans)} spans received; stages traced: {', '.join(stages) or 'none'} "
        "(the serving application exports no spans)"
    )


def step_traces(ctx: Context, client: httpx.Client) -> str:
    """The collector received the request -> feature lookup -> model trace and the stages'."""
    request_id = f"verify-{ctx.values['started_ms']}"
    response = client.post(
        f"{ctx.values['serving_url']}/predict",
        json={"customer_ids": [row[ENTITY_COLUMN] for row in ctx.values["snapshots"]]},
        headers={"X-Request-ID": request_id},
    )
    if response.status_code != 200 or response.headers.get("x-request-id") != request_id:
        raise StepFailed(
            f"/predict: HTTP {response.status_code}, X-Request-ID "
            f"{response.headers.get('x-request-id')!r} (sent {request_id!r})"
        )
    log_path = ctx.logs_dir / "otel-collector.log"
    deadline = time.monotonic() + 20
    problem = "no spans"
    while time.monotonic() < deadline:
        spans = received_spans(log_path.read_text(encoding="utf-8", errors="replace"))
        by_id = {span.get("id"): span for span in spans}
        requests = [s for s in spans if s.get("name") == "POST /predict"]
        children = {
            (by_id[s["parent"]]["id"], s["name"])
            for s in spans
            if s.get("parent") in by_id and s.get("name") in ("feature lookup", "model predict")
        }
        complete = [
            r for r in requests
            if {(r["id"], "feature lookup"), (r["id"], "model predict")} <= children
        ]  # fmt: skip
        stages = traced_stages(spans)
        if complete and (stages or not ctx.force):
            request = complete[-1]
            if request.get("service") != "serving":
                raise StepFailed(f"the request span comes from service {request.get('service')!r}")
            return (
                f"{len(spans)} spans received; POST /predict -> feature lookup, model predict "
                f"(trace {request.get('trace', '?')[:12]}...); stages traced: "
                f"{', '.join(stages) or 'none (dvc repro ran nothing)'}"
            )
        problem = (
            f"{len(spans)} spans, {len(requests)} POST /predict, "
            f"{len(complete)} with both children, stages {stages}"
        )
        time.sleep(0.3)
    raise StepFailed(f"expected trace not received within 20 s: {problem} (see {log_path})")


def step_stack_mlflow(ctx: Context, client: httpx.Client) -> str:
    """The running stack's MLflow (``--stack mlflow=URL``) answers ``/health``."""
    url = ctx.stack["mlflow"]
    wait_http(client, f"{url}/health", None, timeout=ctx.ready_timeout)
    ctx.values["tracking_uri"] = url
    return url


def step_stack_serving(ctx: Context, client: httpx.Client) -> str:
    """The running stack's API loads the champion (it retries until one exists)."""
    return _serving_ready(ctx, client, ctx.stack["serving"], None)


def step_prometheus(ctx: Context, client: httpx.Client) -> str:
    """The stack's Prometheus reports every target of its ``serving`` job up."""
    url = f"{ctx.stack['prometheus']}/api/v1/targets?state=active"
    deadline = time.monotonic() + ctx.ready_timeout
    last: Any = "no answer"
    while time.monotonic() < deadline:
        try:
            targets = client.get(url, timeout=5).json().get("data", {}).get("activeTargets", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            last = type(exc).__name__
        else:
            serving = [t for t in targets if t.get("labels", {}).get("job") == "serving"]
            if serving and all(t.get("health") == "up" for t in serving):
                scraped = ", ".join(str(t.get("scrapeUrl")) for t in serving)
                return f"{len(serving)} serving target(s) up: {scraped}"
            last = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in serving]
        time.sleep(2.0)
    raise StepFailed(f"Prometheus does not report the serving target up: {last or 'no target'}")


def _json_value(name: str, value: Any) -> Any:
    """A feature table value as the API takes it: int, float, text (a category) or null."""
    import pandas as pd

    if name == ENTITY_COLUMN:
        return int(value)
    if pd.isna(value):
        return None
    dtype = FEATURE_DTYPES[name]
    if dtype == "string":
        return str(value)
    return int(value) if dtype.startswith("int") else float(value)


def newest_snapshots(ctx: Context, count: int) -> list[dict[str, Any]]:
    """``count`` customers' newest rows of the offline feature table, JSON-typed."""
    import pandas as pd

    table = pd.read_parquet(ctx.settings.paths.feature_table)
    newest = table.sort_values(TIMESTAMP_COLUMN).groupby(ENTITY_COLUMN, sort=True).tail(1)
    newest = newest.sort_values(ENTITY_COLUMN)
    picks = newest.iloc[:: max(1, len(newest) // count)].head(count)
    rows = [
        {name: _json_value(name, value) for name, value in record.items()}
        for record in picks[[ENTITY_COLUMN, *FEATURE_COLUMNS]].to_dict("records")
    ]
    ctx.values["unknown_id"] = int(table[ENTITY_COLUMN].max()) + 1_000_000
    return rows


def _check_predictions(
    ctx: Context, response: httpx.Response, expected_rows: int
) -> list[dict[str, Any]]:
    """The response's predictions, each checked against the task (:mod:`..serving.outputs`)."""
    if response.status_code != 200:
        raise StepFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("model_version") != ctx.values["champion"]:
        raise StepFailed(f"model_version {body.get('model_version')!r} is not the champion")
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected_rows:
        raise StepFailed(f"expected {expected_rows} predictions, got {str(predictions)[:300]}")
    threshold = float(body["threshold"]) if outputs.USES_THRESHOLD else None
    for item in predictions:
        if item.get("error") is not None:
            continue
        try:
            outputs.row_scores(item)
            outputs.check_decision(item, threshold)
        except ValueError as exc:
            raise StepFailed(str(exc)) from None
    return predictions


def predict_url(ctx: Context) -> str:
    """Where the ``/predict`` contract is served: the FastAPI app's ``/predict``, or the URL
    a serving application's ready step put in ``ctx.values["predict_url"]``."""
    return str(ctx.values.get("predict_url") or f"{ctx.values['serving_url']}/predict")


def step_predict_ids(ctx: Context, client: httpx.Client) -> str:
    """Score known customers by id (Feast online store) plus one unknown id."""
    snapshots = newest_snapshots(ctx, N_CUSTOMERS)
    ctx.values["snapshots"] = snapshots
    ids = [row[ENTITY_COLUMN] for row in snapshots] + [ctx.values["unknown_id"]]
    response = client.post(predict_url(ctx), json={"customer_ids": ids})
    predictions = _check_predictions(ctx, response, len(ids))
    if [p.get("customer_id") for p in predictions] != ids:
        raise StepFailed("customer ids not echoed in request order")
    known, unknown = predictions[:-1], predictions[-1]
    failed = [p for p in known if p.get("error") is not None]
    if failed:
        raise StepFailed(f"known customers got errors: {failed}")
    scored = any(unknown.get(field) is not None for field in outputs.OUTPUT_FIELDS)
    if unknown.get("error") is None or scored:
        raise StepFailed(f"unknown id {ids[-1]} was scored: {unknown}")
    ctx.values["by_id"] = [outputs.row_scores(p) for p in known]
    shown = ", ".join(
        f"{p['customer_id']}:{'/'.join(f'{s:.3f}' for s in outputs.row_scores(p))}" for p in known
    )
    return f"{len(known)} scored ({shown}); unknown id -> {unknown['error']!r}"


def step_predict_rows(ctx: Context, client: httpx.Client) -> str:
    """Score the same customers' newest offline rows; must match the by-id scores."""
    rows = [{k: v for k, v in row.items() if k != ENTITY_COLUMN} for row in ctx.values["snapshots"]]
    response = client.post(predict_url(ctx), json={"rows": rows})
    predictions = _check_predictions(ctx, response, len(rows))
    by_row = [outputs.row_scores(p) for p in predictions]
    worst = max(
        abs(a - b)
        for row, by_id in zip(by_row, ctx.values["by_id"], strict=True)
        for a, b in zip(row, by_id, strict=True)
    )
    if worst > 1e-9:
        raise StepFailed(
            f"rows and ids disagree by up to {worst:.3g}: {by_row} vs {ctx.values['by_id']}"
        )
    # The champion loaded here with MLflow scores the same rows alike (the ONNX fast path
    # or the sklearn fallback serves exactly what was registered).
    served = [score for row in by_row for score in row]
    offline = compare_scores(served, offline_scores(ctx, rows), "served scores")
    return (
        f"{len(rows)} rows scored, {outputs.summary(predictions)}; identical to the by-id"
        f" scores; {offline}"
    )


def step_bad_payload(ctx: Context, client: httpx.Client) -> str:
    """Invalid input is refused with 422 and a message naming the problem."""
    url = predict_url(ctx)
    row = {k: v for k, v in ctx.values["snapshots"][0].items() if k != ENTITY_COLUMN}
    name, wrong = wrong_value()  # a wrong type for a feature of the contract
    cases = {
        f"{name}={wrong!r}": ({"rows": [{**row, name: wrong}]}, name),
        "empty batch": ({"rows": []}, "rows"),
        "no input": ({}, "exactly one"),
    }
    messages = []
    for label, (payload, mentioned) in cases.items():
        response = client.post(url, json=payload)
        if response.status_code != 422:
            raise StepFailed(f"{label}: HTTP {response.status_code}, expected 422")
        message = str(response.json().get("error", ""))
        if mentioned not in message:
            raise StepFailed(f"{label}: message {message!r} does not mention {mentioned!r}")
        messages.append(message)
    return f"422 for {', '.join(cases)} (e.g. {messages[0]!r})"


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """``/metrics`` has the expected families, with counts matching the requests sent."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get(f"{ctx.values['serving_url']}/metrics")
    if response.status_code != 200:
        raise StepFailed(f"/metrics: HTTP {response.status_code}")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    families = set()
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    missing = [name for name in EXPECTED_METRICS if name.removesuffix("_total") not in families]
    if missing:
        raise StepFailed(f"missing metric families: {missing}")

    def total(name: str, **labels: str) -> float:
        return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())

    histogram = outputs.SCORE_HISTOGRAM[0]
    scored = total(f"{histogram}_count")
    if scored < 2 * N_CUSTOMERS:
        raise StepFailed(f"{histogram}_count = {scored} < {2 * N_CUSTOMERS}")
    if total("http_requests_total", route="/predict", status="422") < 1:
        raise StepFailed("no 422 counted for /predict")
    if total("model_info", version=ctx.values["champion"]) != 1:
        raise StepFailed("model_info does not carry the champion version")
    drift = total("data_drift_share")
    return (
        f"{len(EXPECTED_METRICS)} families present; {scored:.0f} scores observed, "
        f"{total('http_requests_total', route='/predict'):.0f} /predict requests, "
        f"data_drift_share={drift:.3f}"
    )


def step_drift(ctx: Context, client: httpx.Client) -> str:
    """Evidently's reports exist and ``reports/monitor.json`` has a numeric drift share."""
    paths = ctx.settings.paths
    for path in (paths.drift_html, paths.drift_json):
        if not path.is_file() or path.stat().st_size == 0:
            raise StepFailed(f"{path} is missing or empty")
    summary = json.loads(paths.monitor_report.read_text(encoding="utf-8"))
    share = summary.get("drift_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
        raise StepFailed(f"drift_share is {share!r}, not a number")
    if not 0.0 <= share <= 1.0:
        raise StepFailed(f"drift_share {share} is outside [0, 1]")
    size_kb = paths.drift_html.stat().st_size / 1024
    return (
        f"drift_share={share:.3f} ({summary.get('drifted_columns')}/{summary.get('n_columns')} "
        f"columns, dataset_drift={summary.get('dataset_drift')}); drift.html {size_kb:.0f} KiB"
    )


# ---- plans -------------------------------------------------------------------------------

#: The native plan every project starts from (components replace or add steps to it).
CORE_PLAN: tuple[PlanStep, ...] = (
    PlanStep("otel collector", step_collector, (), "otel-collector"),
    PlanStep("mlflow server", step_mlflow, (), "mlflow"),
    PlanStep("dvc repro", step_repro, ("mlflow server", "otel collector"), "dvc-repro"),
    PlanStep("champion", step_champion, ("dvc repro",), "mlflow"),
    PlanStep("serving ready", step_serving, ("champion",), "serving"),
    PlanStep("predict ids", step_predict_ids, ("serving ready",), "serving"),
    PlanStep("predict rows", step_predict_rows, ("predict ids",), "serving"),
    PlanStep("bad payload", step_bad_payload, ("predict ids",), "serving"),
    PlanStep("metrics", step_metrics, ("predict rows", "bad payload"), "serving"),
    PlanStep("drift report", step_drift, ("dvc repro",), "dvc-repro"),
    PlanStep("traces", step_traces, ("metrics",), "otel-collector"),
)

#: Against a running stack (``--stack``): the pipeline runs here, the services are the stack's.
STACK_PLAN: tuple[PlanStep, ...] = (
    PlanStep("mlflow", step_stack_mlflow, (), ""),
    PlanStep("dvc repro", step_repro, ("mlflow",), "dvc-repro"),
    PlanStep("champion", step_champion, ("dvc repro",), ""),
    PlanStep("serving ready", step_stack_serving, ("champion",), ""),
    *[step for step in CORE_PLAN[5:] if step.name != "traces"],
    PlanStep("prometheus", step_prometheus, ("metrics",), ""),
)
