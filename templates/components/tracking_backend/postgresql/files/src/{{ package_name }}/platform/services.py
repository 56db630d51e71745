"""The shared services of this project: PostgreSQL, Redis, S3 and the MLflow server command.

Everything is read from the environment (``.env``; see ``.env.example``):

``MLFLOW_BACKEND_STORE_URI``  PostgreSQL database of MLflow's tracking store and registry.
``MLFLOW_AUTH_DATABASE_URI``  PostgreSQL database of MLflow's basic-auth users.
``FEAST_REGISTRY_URI``        PostgreSQL database of Feast's SQL registry.
``POSTGRES_ADMIN_URL``        an account allowed to create roles and databases (dev only).
``FEAST_REDIS``               Redis connection string of Feast's online store.
``AWS_ENDPOINT_URL``          S3 API (moto_server or MinIO); ``S3_BUCKET`` the bucket.
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``  MLflow's admin account.

``python -m <package>.platform.services`` (``make dev-services``) prepares them idempotently: roles
and databases named by the URIs, the bucket, the DVC remote (``.dvc/config.local``,
endpoint only: credentials stay in the environment) and, when nothing listens on a local
S3 port, a ``moto_server`` there (its own virtualenv, ``.dev-services/``).

Neither starts with a secret that is empty or public (a value of ``.env.example`` or a
development value of its earlier versions): ``make secrets`` generates them into ``.env``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..config import find_project_root
from ..envfile import EXIT_INVALID, SecretError, require

MOTO_VERSION = "5.2.5"
# Only values without credentials: every URI carrying a password comes from .env.
DEFAULTS = {
    "POSTGRES_ADMIN_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "FEAST_REDIS": "127.0.0.1:6379,db=0",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_BUCKET": "mlops",
    "MLFLOW_TRACKING_USERNAME": "admin",
}


def env(name: str) -> str:
    """``$name``, or this module's development default."""
    value = os.environ.get(name) or DEFAULTS.get(name)
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


# ---- PostgreSQL ------------------------------------------------------------------------


def ensure_database(admin_url: str, url: str) -> str:
    """Create the role and database ``url`` names when missing; return what was done."""
    import psycopg2
    from psycopg2 import sql

    target = urlsplit(url.replace("+psycopg", ""))
    user, password, database = target.username, target.password, target.path.lstrip("/")
    if not (user and database):
        raise RuntimeError(f"{url}: needs a user and a database name")
    done = []
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                    (password or "",),
                )
                done.append(f"role {user}")
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(user)
                    )
                )
                done.append(f"database {database}")
    finally:
        connection.close()
    return ", ".join(done) or f"{database} exists"


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL for MLflow (SQLAlchemy with psycopg2)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


# ---- S3 --------------------------------------------------------------------------------


def s3_client() -> object:
    """A boto3 S3 client on ``AWS_ENDPOINT_URL`` (credentials from the environment)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env("AWS_ENDPOINT_URL"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def start_moto(root: Path, port: int) -> str:
    """Start ``moto_server`` on 127.0.0.1:``port`` from its own venv (pid in .dev-services/)."""
    state = state_dir(root)
    venv = state / "moto-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "moto_server").exists():
        uv = os.environ.get("UV", "uv")  # the Makefile's (bootstrapped if not on PATH)
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python),
             f"moto[server]=={MOTO_VERSION}"],
            check=True,
        )  # fmt: skip
    log = (state / "moto.log").open("ab")
    process = subprocess.Popen(
        [str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (state / "moto.pid").write_text(f"{process.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + 30
    while not listening("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"moto_server did not start (see {state / 'moto.log'})")
        time.sleep(0.2)
    return f"moto_server started on 127.0.0.1:{port} (pid {process.pid})"


def ensure_s3(root: Path) -> list[str]:
    """Start moto_server if the local S3 port is free, then create the bucket."""
    done = []
    endpoint = urlsplit(env("AWS_ENDPOINT_URL"))
    host, port = endpoint.hostname or "127.0.0.1", endpoint.port or 80
    if not listening(host, port):
        if host not in {"127.0.0.1", "localhost"}:
            raise RuntimeError(f"nothing listens on {host}:{port} (AWS_ENDPOINT_URL)")
        done.append(start_moto(root, port))
    client = s3_client()
    bucket = env("S3_BUCKET")
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}  # type: ignore[attr-defined]
    if bucket not in names:
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        done.append(f"bucket {bucket}")
    else:
        done.append(f"bucket {bucket} exists")
    return done


def configure_dvc_remote(root: Path) -> str:
    """Point DVC's default remote at s3://BUCKET/dvc in ``.dvc/config.local`` (git-ignored)."""
    url = f"s3://{env('S3_BUCKET')}/dvc"
    dvc = [sys.executable, "-m", "dvc", "remote"]
    subprocess.run([*dvc, "add", "--local", "--force", "--default", "s3", url], cwd=root,
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*dvc, "modify", "--local", "s3", "endpointurl", env("AWS_ENDPOINT_URL")],
                   cwd=root, check=True, capture_output=True)  # fmt: skip
    return f"dvc remote s3 -> {url}"


# ---- Redis -----------------------------------------------------------------------------


def redis_client() -> object:
    """A redis client for ``FEAST_REDIS`` (``host:port,db=N[,password=...]``)."""
    import redis

    address, *options = env("FEAST_REDIS").split(",")
    host, _, port = address.partition(":")
    kwargs = dict(option.split("=", 1) for option in options)
    return redis.Redis(
        host=host, port=int(port or 6379), db=int(kwargs.get("db", 0)),
        password=kwargs.get("password"),
    )  # fmt: skip


# ---- MLflow ----------------------------------------------------------------------------


def write_auth_config(root: Path) -> Path:
    """MLflow's basic-auth ini, built from the environment (admin password from .env)."""
    password = env("MLFLOW_TRACKING_PASSWORD")
    path = state_dir(root) / "mlflow-auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {sqlalchemy_url(env('MLFLOW_AUTH_DATABASE_URI'))}\n"
        f"admin_username = {env('MLFLOW_TRACKING_USERNAME')}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def require_secrets(root: Path) -> None:
    """Raise :class:`SecretError` when a secret of the environment must not be used."""
    require(os.environ, root / ".env.example")


def mlflow_server(root: Path, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """Command and extra environment of an MLflow server on PostgreSQL, S3 artifacts, auth."""
    require_secrets(root)
    metrics = state_dir(root) / "mlflow-metrics"
    metrics.mkdir(exist_ok=True)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port),
        "--backend-store-uri", sqlalchemy_url(env("MLFLOW_BACKEND_STORE_URI")),
        "--serve-artifacts",
        "--artifacts-destination", f"s3://{env('S3_BUCKET')}/mlflow",
        "--app-name", "basic-auth",
        "--expose-prometheus", str(metrics),
        "-w", "1",
    ]  # fmt: skip
    extra = {
        "MLFLOW_AUTH_CONFIG_PATH": str(write_auth_config(root)),
        "MLFLOW_S3_ENDPOINT_URL": env("AWS_ENDPOINT_URL"),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": env("MLFLOW_FLASK_SERVER_SECRET_KEY"),
    }
    return command, extra


def prepare(root: Path) -> list[str]:
    """Everything ``make dev-services`` does, idempotently; one line per action."""
    admin = env("POSTGRES_ADMIN_URL")
    done = [
        ensure_database(admin, env(name))
        for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI", "FEAST_REGISTRY_URI")
    ]
    done += ensure_s3(root)
    done.append(configure_dvc_remote(root))
    redis = redis_client()
    redis.ping()  # type: ignore[attr-defined]
    done.append(f"redis {env('FEAST_REDIS')} answers")
    return done


def main(argv: list[str] | None = None) -> None:
    """``python -m <package>.platform.services`` (``make dev-services``); ``mlflow --port N`` runs
    the MLflow server in the foreground (``make mlflow``)."""
    args = sys.argv[1:] if argv is None else argv
    root = find_project_root()
    try:
        require_secrets(root)
    except SecretError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_INVALID)
    if args[:1] == ["mlflow"]:
        port = int(args[2]) if args[1:2] == ["--port"] else 5000
        command, extra = mlflow_server(root, "127.0.0.1", port)
        os.execve(command[0], command, {**os.environ, **extra})  # nosec B606 - fixed argv
    for line in prepare(root):
        print(f"dev-services: {line}")


if __name__ == "__main__":
    main()
