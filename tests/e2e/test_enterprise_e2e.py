"""The enterprise profile against real services: PostgreSQL, Redis, S3 (moto_server), Airflow.

PostgreSQL and Redis come from ``ENTERPRISE_TEST_POSTGRES_URL`` (an account that may
create roles and databases) and ``ENTERPRISE_TEST_REDIS`` (host:port), defaulting to the
machine's 127.0.0.1 servers. Fresh databases, a fresh role and an unused Redis db number
are created for the test and dropped after it. ``make dev-services`` starts moto_server
on a free port. No mocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.envs import cached_env, content_key, uv_env

pytestmark = pytest.mark.slow

POSTGRES = os.environ.get("ENTERPRISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("ENTERPRISE_TEST_REDIS", "127.0.0.1:6379")
REDIS_DB = int(os.environ.get("ENTERPRISE_TEST_REDIS_DB", "13"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(["psql", POSTGRES, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enterprise")
    return create_project(load_stack("enterprise"), root / "ent-demo")


@pytest.fixture()
def services_env(project: Path) -> Iterator[dict[str, str]]:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    tag = f"t{uuid.uuid4().hex[:8]}"
    host = POSTGRES.split("@", 1)[1].split("/", 1)[0]
    password = uuid.uuid4().hex
    values = {
        "POSTGRES_ADMIN_URL": POSTGRES,
        "MLFLOW_BACKEND_STORE_URI": f"postgresql://{tag}:{password}@{host}/{tag}_mlflow",
        "MLFLOW_AUTH_DATABASE_URI": f"postgresql://{tag}:{password}@{host}/{tag}_auth",
        "FEAST_REGISTRY_URI": f"postgresql+psycopg://{tag}:{password}@{host}/{tag}_feast",
        "FEAST_REDIS": f"{REDIS},db={REDIS_DB}",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    lines = []
    for line in (project / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values and "=" in line else line)
    (project / ".env").write_text("\n".join(lines) + "\n")
    subprocess.run(["redis-cli", "-h", REDIS.split(":")[0], "-p", REDIS.split(":")[1], "-n",
                    str(REDIS_DB), "flushdb"], check=True, capture_output=True)
    try:
        yield values
    finally:
        pid_file = project / ".dev-services" / "moto.pid"
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        for database in ("mlflow", "auth", "feast"):
            psql(f"DROP DATABASE IF EXISTS {tag}_{database} WITH (FORCE)")
        psql(f"DROP ROLE IF EXISTS {tag}")
        subprocess.run(["redis-cli", "-h", REDIS.split(":")[0], "-p", REDIS.split(":")[1],
                        "-n", str(REDIS_DB), "flushdb"], check=False, capture_output=True)


def make(project: Path, target: str, timeout: int) -> str:
    env = uv_env()
    for key in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    started = time.monotonic()
    result = subprocess.run(["make", target], cwd=project, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    print(f"make {target}: {time.monotonic() - started:.0f} s")  # shown with -rP / on failure
    assert result.returncode == 0, (
        f"make {target}:\n{result.stdout[-8000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def test_setup_dev_services_verify_on_real_services(
    project: Path, services_env: dict[str, str]
) -> None:
    make(project, "setup", 900)
    # make setup ran make secrets: the secrets .env.example leaves empty are generated.
    generated = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
    for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "SERVING_API_KEY",
                 "POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
        assert len(generated[name]) >= 32, name
    first = make(project, "dev-services", 300)
    assert "moto_server started" in first
    again = make(project, "dev-services", 120)  # idempotent
    assert "exists" in again and "moto_server started" not in again
    make(project, "verify", 900)
    report = json.loads((project / "reports" / "verify.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    assert report["ok"], report
    for name in ("validation", "ray tune", "mlflow auth", "redis online", "api key",
                 "dvc remote", "prometheus", "metrics", "champion", "s3 bucket",
                 "artifacts on s3"):
        assert steps[name]["ok"], steps[name]
    # The S3 settings (artifact_store, data_remote) verified here, on the dev moto_server.
    assert "mlflow-artifacts:/churn/" in steps["artifacts on s3"]["detail"]
    assert "objects in s3 dvc/" in steps["dvc remote"]["detail"]
    if shutil.which("prometheus") or os.environ.get("CI"):
        # CI installs Debian's prometheus (.ci/run): there the real scrape must have run.
        assert "up" in steps["prometheus"]["detail"], steps["prometheus"]
    # The project's own checks, in the environment `make setup` built and against the
    # same services: ruff + mypy, then its pytest suite (PostgreSQL registry, Redis).
    make(project, "lint", 600)
    tested = make(project, "test", 900)
    assert " passed" in tested and " failed" not in tested, tested[-2000:]


def airflow_pins(project: Path) -> list[str]:
    """The project's Airflow pins: what its Airflow image installs."""
    text = (project / "docker" / "airflow-requirements.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def airflow_env(project: Path) -> Path:
    """Airflow in its own environment: its pins clash with the ML tools' (fastapi)."""
    pins = airflow_pins(project)
    return cached_env("airflow-" + content_key("\n".join(pins)), pins, compile_bytecode=False)


def test_airflow_dag_imports_in_airflow(project: Path, tmp_path: Path) -> None:
    venv = airflow_env(project)
    code = (
        "import json; from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag('dags', safe_mode=False)\n"
        "dag = next(iter(bag.dags.values()))\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'tasks': [t.task_id for t in dag.tasks], 'retries': dag.tasks[0].retries,"
        " 'deadline': len(dag.deadline or [])}))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert found["tasks"] == ["prepare", "validate", "features", "tune", "train", "evaluate",
                              "monitor"]
    assert found["retries"] >= 1 and found["deadline"] == 1


def test_prometheus_config_and_grafana_provisioning(project: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing under CI: .ci/run installs Debian's prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "config", "--syntax-only",
                            "monitoring/prometheus.yml"], cwd=project, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    config = yaml.safe_load((project / "monitoring" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"serving", "mlflow"} <= jobs
    grafana = project / "monitoring" / "grafana"
    provisioning = grafana / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((grafana / "dashboards" / "churn.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("http_requests_total", "http_request_duration_seconds_bucket",
                   "prediction_churn_probability_bucket", "data_drift_share", "model_info",
                   "data_drift_drifted_columns"):
        assert metric in exprs, metric
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == sources["datasources"][0]["uid"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
