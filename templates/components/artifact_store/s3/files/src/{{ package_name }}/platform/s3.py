"""The S3 bucket of this project (artifact_store=s3): MinIO under compose, moto_server natively.

Everything is read from the environment (``.env``; see ``.env.example``):

``AWS_ENDPOINT_URL``   the S3 API: MinIO in the compose stack, a ``moto_server`` here;
``S3_BUCKET``          the bucket: MLflow's artifacts under ``mlflow/`` (proxied by the
                       MLflow server: clients need no S3 credentials), the DVC remote under
                       ``dvc/`` when the project has one there;
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``  its credentials (MinIO's root user).

``python -m <package>.platform.s3`` (``make dev-services``) prepares it idempotently: when nothing
listens on a loopback endpoint it starts a ``moto_server`` there (its own virtualenv under
``.dev-services/``, stopped by ``make dev-services-stop``), then creates the bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ..config import find_project_root

MOTO_VERSION = "5.2.5"
# Only values without credentials: the secret comes from .env.
DEFAULTS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_BUCKET": "mlops",
}
LOOPBACK = frozenset({"127.0.0.1", "localhost"})


def env(name: str, defaults: Mapping[str, str] = DEFAULTS) -> str:
    """``$name``, or its development default in ``defaults``."""
    value = os.environ.get(name) or defaults.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: copy .env.example to .env")
    return value


def state_dir(root: Path) -> Path:
    """Git-ignored directory for generated service config, pid files and logs."""
    path = root / ".dev-services"
    path.mkdir(parents=True, exist_ok=True)
    return path


def listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def endpoint() -> tuple[str, int]:
    """Host and port of ``AWS_ENDPOINT_URL``."""
    parts = urlsplit(env("AWS_ENDPOINT_URL"))
    return parts.hostname or "127.0.0.1", parts.port or 80


def s3_client() -> object:
    """A boto3 S3 client on ``AWS_ENDPOINT_URL`` (credentials from the environment)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env("AWS_ENDPOINT_URL"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def moto_command(root: Path, port: int) -> list[str]:
    """``moto_server`` on 127.0.0.1:``port``, installed into its own venv on first use."""
    venv = state_dir(root) / "moto-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "moto_server").exists():
        uv = os.environ.get("UV", "uv")  # the Makefile's (bootstrapped if not on PATH)
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python),
             f"moto[server]=={MOTO_VERSION}"],
            check=True,
        )  # fmt: skip
    return [str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Wait up to 30 s for the moto_server ``process`` to accept connections on ``port``."""
    deadline = time.monotonic() + 30
    while not listening("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"moto_server did not start (see {log})")
        time.sleep(0.2)


def start_moto(root: Path, port: int) -> str:
    """Start ``moto_server`` on 127.0.0.1:``port``, detached (pid in .dev-services/)."""
    state = state_dir(root)
    log = state / "moto.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            moto_command(root, port),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (state / "moto.pid").write_text(f"{process.pid}\n", encoding="utf-8")
    wait_listening(process, port, log)
    return f"moto_server started on 127.0.0.1:{port} (pid {process.pid})"


def ensure_bucket() -> str:
    """Create ``S3_BUCKET`` when missing; return what was done."""
    client = s3_client()
    bucket = env("S3_BUCKET")
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}  # type: ignore[attr-defined]
    if bucket in names:
        return f"bucket {bucket} exists"
    client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    return f"bucket {bucket}"


def ensure_s3(root: Path) -> list[str]:
    """Start moto_server if the local S3 port is free, then create the bucket."""
    done = []
    host, port = endpoint()
    if not listening(host, port):
        if host not in LOOPBACK:
            raise RuntimeError(f"nothing listens on {host}:{port} (AWS_ENDPOINT_URL)")
        done.append(start_moto(root, port))
    done.append(ensure_bucket())
    return done


def mlflow_artifacts() -> tuple[list[str], dict[str, str]]:
    """Arguments and environment of an ``mlflow server`` proxying artifacts to the bucket."""
    arguments = ["--serve-artifacts", "--artifacts-destination", f"s3://{env('S3_BUCKET')}/mlflow"]
    return arguments, {"MLFLOW_S3_ENDPOINT_URL": env("AWS_ENDPOINT_URL")}


def main() -> None:
    """``python -m <package>.platform.s3`` (``make dev-services``): the endpoint and the bucket."""
    try:
        done = ensure_s3(find_project_root())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    for line in done:
        print(f"dev-services: {line}")


if __name__ == "__main__":
    main()
