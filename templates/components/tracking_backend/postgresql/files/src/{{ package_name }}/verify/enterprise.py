"""The shared services' steps of ``verify`` (tracking_backend=postgresql), checked for real.

Listed by ``verify_steps`` of that setting value (the catalogue's settings.yml), placed
by the rendered :mod:`.plan`: ``mlflow server`` (:func:`step_mlflow`) takes the
core step's place (PostgreSQL backend store, artifacts proxied to S3, basic auth), and
these follow the core steps:

``validation``    Great Expectations passed on both raw files (reports/validation.json),
                  when the stack has validation=great-expectations (``when`` in the data);
``ray tune``      the tune stage ran on Ray Tune and every trial is an MLflow run, when
                  the stack has tuning=ray-tune;
``mlflow auth``   the tracking API refuses anonymous calls (401); the registry rows are
                  in PostgreSQL (that the artifacts are in the S3 bucket is the
                  ``artifacts on s3`` step of artifact_store=s3, :mod:`.s3`);
``redis online``  Feast's online store holds the customers in Redis, with a key TTL;
``api key``       ``/predict`` without the key gets 401, ``/health`` stays open;
``prometheus``    a real Prometheus (if installed) scrapes serving and MLflow with the
                  project's config: both targets up, the drift gauges queryable.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..config import EXPERIMENT_NAME
from ..platform.services import env, mlflow_server, redis_client
from .core import start_mlflow
from .runner import Context, Flag, StepFailed, free_port, start, wait_http

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()


def step_mlflow(ctx: Context, client: httpx.Client) -> str:
    """Start the shared services' MLflow server (PostgreSQL, S3 artifacts, basic auth)."""
    port = free_port()
    command, extra = mlflow_server(ctx.root, "127.0.0.1", port)
    return start_mlflow(ctx, client, port, command, extra)


def step_validation(ctx: Context, client: httpx.Client) -> str:
    """Great Expectations ran after prepare and passed."""
    report = json.loads((ctx.root / "reports" / "validation.json").read_text(encoding="utf-8"))
    if not report.get("success"):
        raise StepFailed(f"validation failed: {report}")
    parts = [
        f"{r['name']}: {r['evaluated']} expectations on {r['rows']} rows" for r in report["results"]
    ]
    return "; ".join(parts)


def step_ray_tune(ctx: Context, client: httpx.Client) -> str:
    """best_params.json comes from Ray Tune and each trial is an MLflow run."""
    from mlflow import MlflowClient

    best = json.loads(ctx.settings.paths.best_params.read_text(encoding="utf-8"))
    if best.get("tuner") != "ray-tune":
        raise StepFailed(f"best_params.json was not written by Ray Tune: {best}")
    tracking = MlflowClient(ctx.values["tracking_uri"])
    experiment = tracking.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        raise StepFailed(f"no {EXPERIMENT_NAME} experiment in MLflow")
    runs = tracking.search_runs(
        [experiment.experiment_id], "tags.tuner = 'ray-tune'", max_results=1000
    )
    fresh = [r for r in runs if r.info.start_time >= ctx.values["started_ms"]]
    if len(fresh) < int(best["n_trials"]):
        raise StepFailed(f"{len(fresh)} Ray Tune trial runs in MLflow, expected {best['n_trials']}")
    score = best["cv_" + best["metric"]]
    return f"{len(fresh)} trials logged to MLflow; best cv {best['metric']} {score}"


def step_mlflow_auth(ctx: Context, client: httpx.Client) -> str:
    """Anonymous calls get 401; the registry lives in PostgreSQL."""
    import psycopg2

    from ..platform.services import sqlalchemy_url

    url = f"{ctx.values['tracking_uri']}/api/2.0/mlflow/experiments/search?max_results=1"
    anonymous = client.get(url)
    if anonymous.status_code != 401:
        raise StepFailed(f"anonymous tracking API call answered {anonymous.status_code}, not 401")
    login = (env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD"))
    if client.get(url, auth=login).status_code != 200:
        raise StepFailed("the admin account from .env cannot call the tracking API")
    connection = psycopg2.connect(sqlalchemy_url(env("MLFLOW_BACKEND_STORE_URI")))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM model_versions WHERE name = %s",
                           (ctx.settings.model_name,))  # fmt: skip
            row = cursor.fetchone()
            versions = int(row[0]) if row else 0
    finally:
        connection.close()
    if versions < 1:
        raise StepFailed("no model version rows in PostgreSQL")
    return f"anonymous 401, admin 200; {versions} model version(s) in PostgreSQL"


def step_redis(ctx: Context, client: httpx.Client) -> str:
    """Feast materialized every customer into Redis, keys expiring."""
    redis = redis_client()
    keys = list(redis.scan_iter(count=1000))  # type: ignore[attr-defined]
    if not keys:
        raise StepFailed(f"no keys in Redis ({env('FEAST_REDIS')})")
    ttl = int(redis.ttl(keys[0]))  # type: ignore[attr-defined]
    if ttl <= 0:
        raise StepFailed(f"Redis key {keys[0]!r} has no TTL ({ttl})")
    return f"{len(keys)} entity keys in Redis {env('FEAST_REDIS')}, TTL {ttl // 86400} days"


def step_api_key(ctx: Context, client: httpx.Client) -> str:
    """``/predict`` refuses a missing key; the probes stay open."""
    url = ctx.values["serving_url"]
    anonymous = httpx.post(
        f"{url}/predict", json={"customer_ids": [1]}, timeout=30, trust_env=False
    )
    if anonymous.status_code != 401:
        raise StepFailed(f"/predict without X-API-Key answered {anonymous.status_code}, not 401")
    health = httpx.get(f"{url}/health", timeout=30, trust_env=False)
    if health.status_code != 200:
        raise StepFailed(f"/health without a key answered {health.status_code}")
    return "/predict without key -> 401; /health open; keyed requests scored above"


def _prometheus_config(ctx: Context) -> Path:
    """The project's monitoring/prometheus.yml with compose targets mapped to local ports."""
    config = yaml.safe_load(
        (ctx.root / "monitoring" / "prometheus.yml").read_text(encoding="utf-8")
    )
    serving_port = ctx.values["serving_url"].rsplit(":", 1)[1]
    mlflow_port = ctx.values["tracking_uri"].rsplit(":", 1)[1]
    mapping = {
        "serving:8000": f"127.0.0.1:{serving_port}",
        "mlflow:5000": f"127.0.0.1:{mlflow_port}",
    }
    for job in config["scrape_configs"]:
        job["scrape_interval"] = "1s"
        job.pop("scrape_timeout", None)
        for group in job.get("static_configs", []):
            group["targets"] = [mapping.get(t, t) for t in group["targets"]]
        if "basic_auth" in job:
            secret = ctx.logs_dir / "prometheus-mlflow-password"
            secret.write_text(env("MLFLOW_TRACKING_PASSWORD"), encoding="utf-8")
            job["basic_auth"] = {
                "username": env("MLFLOW_TRACKING_USERNAME"),
                "password_file": str(secret),
            }
    path = ctx.logs_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def step_prometheus(ctx: Context, client: httpx.Client) -> str:
    """A real Prometheus scrapes serving and MLflow with the project's scrape config."""
    binary = shutil.which("prometheus")
    if binary is None:
        return "skipped: no prometheus binary (apt-get install prometheus); config not scraped"
    port = free_port()
    data = ctx.logs_dir / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)
    command = [binary, f"--config.file={_prometheus_config(ctx)}", f"--storage.tsdb.path={data}",
               f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    service = start(ctx, "prometheus", command, dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    wait_http(client, f"{base}/-/ready", service, timeout=60)
    deadline = time.monotonic() + 60
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        targets = client.get(f"{base}/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t.get("lastError")) for t in targets}
        if health.get("serving", ("",))[0] == "up" and health.get("mlflow", ("",))[0] == "up":
            break
        time.sleep(0.5)
    else:
        raise StepFailed(f"Prometheus targets not up: {health}")
    query = client.get(
        f"{base}/api/v1/query", params={"query": "data_drift_drifted_columns"}
    ).json()
    series = query["data"]["result"]
    if not series:
        raise StepFailed("data_drift_drifted_columns not in Prometheus")
    return f"targets {sorted(health)} up; data_drift_drifted_columns = {series[0]['value'][1]}"
