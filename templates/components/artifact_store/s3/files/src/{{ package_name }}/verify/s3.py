"""The S3 bucket's steps of ``verify`` (artifact_store=s3), against a real S3 API.

Listed by ``verify_steps`` of that setting value (the catalogue's settings.yml), placed
by the rendered :mod:`.verify_plan`:

``s3 bucket``        before ``mlflow server``: ``AWS_ENDPOINT_URL`` answers (when nothing
                     listens on a loopback endpoint, a ``moto_server`` is started there and
                     stopped at the end), the bucket exists; the MLflow server started next
                     proxies its artifacts to ``s3://S3_BUCKET/mlflow`` and the pipeline
                     stores them through it (``mlflow-artifacts:``);
``artifacts on s3``  after ``champion``: the champion's run stores its artifacts through
                     the server and its ``MLmodel`` is an object under ``mlflow/``.
"""

from __future__ import annotations

import os

import httpx

from ..config import EXPERIMENT_NAME, MODEL_ALIAS
from ..platform.s3 import (
    LOOPBACK,
    endpoint,
    ensure_bucket,
    env,
    listening,
    mlflow_artifacts,
    moto_command,
    s3_client,
    wait_listening,
)
from .runner import Context, Flag, StepFailed, child_env, start

#: The command-line flags of this module's steps (none; see :class:`.verify.Flag`).
FLAGS: tuple[Flag, ...] = ()


def step_s3_bucket(ctx: Context, client: httpx.Client) -> str:
    """The S3 endpoint answers (moto_server started on a free loopback one); the bucket exists."""
    host, port = endpoint()
    started = ""
    if not listening(host, port):
        if host not in LOOPBACK:
            raise StepFailed(f"nothing listens on {host}:{port} (AWS_ENDPOINT_URL)")
        service = start(ctx, "moto", moto_command(ctx.root, port), child_env(ctx))
        try:
            wait_listening(service.process, port, service.log)
        except RuntimeError as error:
            raise StepFailed(str(error)) from error
        started = "started moto_server, "
    try:
        bucket = ensure_bucket()
    except Exception as error:  # botocore's errors: no credentials, refused, denied
        raise StepFailed(f"{env('AWS_ENDPOINT_URL')}: {type(error).__name__}: {error}") from error
    # The MLflow server of the next step proxies the artifacts to the bucket; the pipeline
    # creates its experiment with the proxy's URI, so it needs no S3 access of its own.
    ctx.values["mlflow_artifacts"] = mlflow_artifacts()
    os.environ.setdefault("MLFLOW_ARTIFACT_LOCATION", f"mlflow-artifacts:/{EXPERIMENT_NAME}")
    return f"{started}{env('AWS_ENDPOINT_URL')}: {bucket}"


def step_artifacts_on_s3(ctx: Context, client: httpx.Client) -> str:
    """The champion's artifacts went through the server's proxy into the bucket."""
    from mlflow import MlflowClient

    registry = MlflowClient(ctx.values["tracking_uri"], ctx.values["tracking_uri"])
    version = registry.get_model_version_by_alias(ctx.settings.model_name, MODEL_ALIAS)
    run = registry.get_run(str(version.run_id))
    if not run.info.artifact_uri.startswith("mlflow-artifacts:"):
        raise StepFailed(
            f"run artifacts at {run.info.artifact_uri}, not behind the proxy (an experiment"
            " created before artifact_store=s3 keeps its location: README, 'S3 bucket')"
        )
    bucket = env("S3_BUCKET")
    listing = s3_client().list_objects_v2(Bucket=bucket, Prefix="mlflow/")  # type: ignore[attr-defined]
    keys = [item["Key"] for item in listing.get("Contents", [])]
    if not any(key.endswith("MLmodel") for key in keys):
        raise StepFailed(f"no MLmodel under s3://{bucket}/mlflow/ ({len(keys)} objects)")
    return f"run {version.run_id}: {run.info.artifact_uri}; {len(keys)} objects in s3://{bucket}/mlflow"
