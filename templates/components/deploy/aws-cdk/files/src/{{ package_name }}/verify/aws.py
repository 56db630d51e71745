"""The aws-cdk steps of ``verify``: the whole chain on the S3/DynamoDB API, natively.

Listed by ``verify_steps`` of the deploy/aws-cdk component, placed by the rendered
:mod:`.plan` among the core steps (:mod:`.core`: mlflow server, dvc repro,
champion, serving, predictions, metrics, drift), against ``AWS_ENDPOINT_URL``:

1. ``aws endpoint``    unset or loopback with nothing listening: start ``moto_server`` on
                       127.0.0.1 (stopped at the end); create the three buckets;
2. ``mlflow server``   artifacts in ``s3://S3_ARTIFACT_BUCKET/artifacts``
                       (``MLFLOW_S3_ENDPOINT_URL``); the pipeline logs straight to S3;
3. ``model on s3``     the champion's artifacts are objects in that bucket;
4. ``feast on s3``     the registry (``s3://S3_DATA_BUCKET/feast/registry.pb``) names the
                       S3 copy of the feature table as the view's offline source, and that
                       object equals the DVC-versioned parquet: the point-in-time joins of
                       `train` and `materialize` of `features` read it from S3;
5. ``dynamodb``        Feast materialized into the DynamoDB online store table; the
                       ``predict ids`` step reads it back through the serving app;
6. ``sagemaker``       ``GET /ping`` and ``POST /invocations`` with JSON and CSV rows give
                       the by-id probabilities;
7. ``reports to s3``   the Evidently reports are uploaded and listed back;
8. ``dvc push/pull``   outputs pushed to ``s3://S3_DATA_BUCKET/dvc``; one output's cache
                       entry and file are deleted and pulled back, byte-identical.

A non-loopback ``AWS_ENDPOINT_URL`` is refused unless ``python -m <package>.verify`` is
given ``--real-aws`` (:data:`FLAGS`): verify writes to the buckets it is pointed at.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from ..config import EXPERIMENT_NAME, MODEL_ALIAS
from ..platform import aws
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_VIEW
from .core import start_mlflow
from .runner import Context, Flag, Service, StepFailed, child_env, free_port

#: ``--real-aws`` of ``python -m <package>.verify``: allow a non-local endpoint.
FLAGS: tuple[Flag, ...] = (
    Flag("--real-aws", "allow a non-local AWS endpoint (writes to real buckets)"),
)


def step_endpoint(ctx: Context, client: httpx.Client) -> str:
    """Use ``AWS_ENDPOINT_URL`` or start moto_server; create the buckets."""
    url = aws.endpoint_url()
    started = ""
    if url is None and not ctx.values["real_aws"]:
        url = f"http://127.0.0.1:{free_port()}"
        os.environ["AWS_ENDPOINT_URL"] = url
    if url is not None and not aws.is_loopback(url) and not ctx.values["real_aws"]:
        raise StepFailed(f"AWS_ENDPOINT_URL={url} is not local; pass --real-aws to use it")
    if url is not None and aws.is_loopback(url):
        parts = url.split(":")
        port = int(parts[-1].rstrip("/")) if len(parts) == 3 else 80
        if not aws.listening("127.0.0.1", port):
            log = ctx.logs_dir / "moto.log"
            process = aws.start_moto(port, log)
            ctx.services["moto"] = Service("moto", process, log)
            ctx.logs["moto"] = log
            started = "started moto_server, "
        aws.use_local_credentials()
    if url is not None:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = url
    for variable, bucket in aws.bucket_variables().items():
        os.environ.setdefault(variable, bucket)  # feature_store.yaml expands S3_DATA_BUCKET
    os.environ.setdefault("MLFLOW_ARTIFACT_LOCATION", f"{aws.artifact_root()}/{EXPERIMENT_NAME}")
    done = aws.create_buckets()
    return f"{started}{url or 'real AWS'} ({aws.region()}): {'; '.join(done)}"


def step_mlflow_s3(ctx: Context, client: httpx.Client) -> str:
    """``mlflow server`` with SQLite metadata and artifacts on S3."""
    root = ctx.root
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", aws.artifact_root(),
        "-w", "1",
    ]  # fmt: skip
    extra = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    url = start_mlflow(ctx, client, port, command, extra)
    return f"{url}, artifacts in {aws.artifact_root()}"


def step_model_on_s3(ctx: Context, client: httpx.Client) -> str:
    """The champion's model files are objects in the artifact bucket."""
    from mlflow import MlflowClient

    registry = MlflowClient(ctx.values["tracking_uri"], ctx.values["tracking_uri"])
    version = registry.get_model_version_by_alias(ctx.settings.model_name, MODEL_ALIAS)
    run = registry.get_run(str(version.run_id))
    bucket = aws.buckets()["artifacts"]
    if not run.info.artifact_uri.startswith(f"s3://{bucket}/"):
        raise StepFailed(f"run artifacts at {run.info.artifact_uri}, not in s3://{bucket}")
    keys = aws.list_keys(bucket, "")
    models = [key for key in keys if key.endswith("MLmodel")]
    if not models:
        raise StepFailed(f"no MLmodel object in s3://{bucket} ({len(keys)} objects)")
    return f"{len(keys)} objects in s3://{bucket}, {len(models)} MLmodel file(s)"


def step_feast_s3(ctx: Context, client: httpx.Client) -> str:
    """Registry on S3; the view's offline source is the S3 copy of the feature table."""
    from ..platform.feature_store import offline_source_uri, open_store

    bucket = aws.buckets()["data"]
    keys = set(aws.list_keys(bucket, "feast/"))
    if "feast/registry.pb" not in keys:
        raise StepFailed(f"no Feast registry at s3://{bucket}/feast/registry.pb ({sorted(keys)})")
    source = offline_source_uri(open_store(ctx.settings), FEATURE_VIEW)
    if not source.startswith(f"s3://{bucket}/"):
        raise StepFailed(f"the registered offline source is {source}, not in s3://{bucket}")
    key = source.split("/", 3)[3]
    remote = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    local = ctx.settings.paths.feature_table
    if hashlib.md5(remote, usedforsecurity=False).hexdigest() != _md5(local):
        raise StepFailed(f"{source} differs from {local.relative_to(ctx.root)}")
    return f"registry s3://{bucket}/feast/registry.pb; offline source {source} = DVC parquet"


def step_dynamodb(ctx: Context, client: httpx.Client) -> str:
    """Feast's materialization wrote one item per customer into DynamoDB."""
    dynamodb = aws.client("dynamodb")
    tables = [t for t in dynamodb.list_tables()["TableNames"] if t.endswith(f".{FEATURE_VIEW}")]
    if not tables:
        raise StepFailed("no Feast table in DynamoDB")
    count = dynamodb.scan(TableName=tables[0], Select="COUNT")["Count"]
    if count == 0:
        raise StepFailed(f"{tables[0]} is empty")
    return f"{tables[0]}: {count} items"


def step_sagemaker(ctx: Context, client: httpx.Client) -> str:
    """``/ping`` is 200; ``/invocations`` scores JSON and CSV rows like ``/predict`` by id."""
    url = ctx.values["serving_url"]
    ping = client.get(f"{url}/ping")
    if ping.status_code != 200:
        raise StepFailed(f"/ping: HTTP {ping.status_code}")
    rows = [{k: v for k, v in row.items() if k != ENTITY_COLUMN} for row in ctx.values["snapshots"]]
    as_json = client.post(f"{url}/invocations", json={"instances": rows})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row[name] for name in FEATURE_COLUMNS])
    as_csv = client.post(
        f"{url}/invocations", content=buffer.getvalue(), headers={"Content-Type": "text/csv"}
    )
    results = []
    for label, response in (("json", as_json), ("csv", as_csv)):
        if response.status_code != 200:
            raise StepFailed(f"/invocations ({label}): HTTP {response.status_code} {response.text}")
        results.append([p["churn_probability"] for p in response.json()["predictions"]])
    # By-id scores per row (verify/core.py keeps each row's numbers): one probability each.
    expected = [score for row in ctx.values["by_id"] for score in row]
    for label, probabilities in zip(("json", "csv"), results, strict=True):
        worst = max(abs(a - b) for a, b in zip(probabilities, expected, strict=True))
        if worst > 1e-9:
            raise StepFailed(f"/invocations ({label}) differs from /predict by {worst:.3g}")
    bad = client.post(f"{url}/invocations", content="1,2\n", headers={"Content-Type": "text/csv"})
    if bad.status_code != 400:
        raise StepFailed(f"a short CSV row got HTTP {bad.status_code}, expected 400")
    return f"/ping 200; {len(rows)} rows via JSON and CSV = by-id scores; bad CSV -> 400"


def step_reports_s3(ctx: Context, client: httpx.Client) -> str:
    """Upload the Evidently reports and find them in the reports bucket."""
    stamp = f"verify-{int(time.time())}"
    uris = aws.publish_reports(ctx.settings, stamp)
    keys = set(aws.list_keys(aws.buckets()["reports"], f"reports/{stamp}/"))
    missing = [uri for uri in uris if uri.split("/", 3)[3] not in keys]
    if missing:
        raise StepFailed(f"not found after upload: {missing}")
    return f"{len(uris)} objects under s3://{aws.buckets()['reports']}/reports/{stamp}/"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def step_dvc_push_pull(ctx: Context, client: httpx.Client) -> str:
    """``dvc push`` to S3, then pull back a deleted output (cache entry and file)."""
    root = ctx.root
    remote = aws.configure_dvc_remote(root)
    env = child_env(ctx)
    dvc = [sys.executable, "-m", "dvc"]
    pushed = subprocess.run([*dvc, "push"], cwd=root, env=env, capture_output=True,
                                   text=True, check=False)  # fmt: skip
    if pushed.returncode != 0:
        raise StepFailed(f"dvc push failed: {(pushed.stdout + pushed.stderr)[-500:]}")
    objects = aws.list_keys(aws.buckets()["data"], "dvc/")
    if not objects:
        raise StepFailed("dvc push left no object under dvc/")
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    target = next(
        out for out in lock["stages"]["train"]["outs"] if out["path"] == "data/holdout.parquet"
    )
    digest = str(target["md5"])
    cached = root / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    workspace = root / target["path"]
    if _md5(workspace) != digest:
        raise StepFailed(f"{workspace} does not match dvc.lock before the pull test")
    cached.unlink(missing_ok=True)
    workspace.unlink()
    pulled = subprocess.run([*dvc, "pull", target["path"]], cwd=root, env=env,
                                   capture_output=True, text=True, check=False)  # fmt: skip
    if pulled.returncode != 0 or not workspace.is_file():
        raise StepFailed(f"dvc pull failed: {(pulled.stdout + pulled.stderr)[-500:]}")
    if _md5(workspace) != digest:
        raise StepFailed(f"pulled {target['path']} differs from dvc.lock's md5")
    return f"{remote}; {len(objects)} objects pushed; {target['path']} pulled back intact"
