"""The shared services of this project: PostgreSQL, Redis and the MLflow server command.

Everything is read from the environment (``.env``; see ``.env.example``):

``MLFLOW_BACKEND_STORE_URI``  PostgreSQL database of MLflow's tracking store and registry.
``MLFLOW_AUTH_DATABASE_URI``  PostgreSQL database of MLflow's basic-auth users.
``FEAST_REGISTRY_URI``        PostgreSQL database of Feast's SQL registry.
``POSTGRES_ADMIN_URL``        an account allowed to create roles and databases (dev only).
``FEAST_REDIS``               Redis connection string of Feast's online store.
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``  MLflow's admin account.

``python -m <package>.platform.services`` (``make dev-services``, next to the S3 bucket's
:mod:`.s3`) prepares them idempotently: roles and databases named by the URIs, and checks
that Redis answers. The MLflow server proxies its artifacts to the S3 bucket
(:func:`.s3.mlflow_artifacts`).

Neither starts with a secret that is empty or public (a value of ``.env.example`` or a
development value of its earlier versions): ``make secrets`` generates them into ``.env``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ..config import find_project_root
from ..envfile import EXIT_INVALID, SecretError, require
from . import s3
from .s3 import state_dir

# Only values without credentials: every URI carrying a password comes from .env.
DEFAULTS = {
    "POSTGRES_ADMIN_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "FEAST_REDIS": "127.0.0.1:6379,db=0",
    "MLFLOW_TRACKING_USERNAME": "admin",
}


def env(name: str) -> str:
    """``$name``, or this module's development default."""
    return s3.env(name, DEFAULTS)


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
    artifacts, artifact_env = s3.mlflow_artifacts()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port),
        "--backend-store-uri", sqlalchemy_url(env("MLFLOW_BACKEND_STORE_URI")),
        *artifacts,
        "--app-name", "basic-auth",
        "--expose-prometheus", str(metrics),
        "-w", "1",
    ]  # fmt: skip
    extra = {
        "MLFLOW_AUTH_CONFIG_PATH": str(write_auth_config(root)),
        **artifact_env,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": env("MLFLOW_FLASK_SERVER_SECRET_KEY"),
    }
    return command, extra


def prepare() -> list[str]:
    """Its part of ``make dev-services``, idempotently; one line per action."""
    admin = env("POSTGRES_ADMIN_URL")
    done = [
        ensure_database(admin, env(name))
        for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI", "FEAST_REGISTRY_URI")
    ]
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
    for line in prepare():
        print(f"dev-services: {line}")


if __name__ == "__main__":
    main()
