"""Secure defaults of generated stacks: no working default secret, hardened compose, offline.

Each profile is rendered once per module; the checks run the project's own `make secrets`,
its envfile module, its services module and its entry points, and docker-compose 1.29
(`config -q`) when installed.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack

pytestmark = pytest.mark.render

SECRETS = {
    "POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY", "SERVING_API_KEY", "GRAFANA_ADMIN_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY",
}
DATABASE_URIS = ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI", "FEAST_REGISTRY_URI")
OFFLINE = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "DVC_NO_ANALYTICS": "true", "FEAST_USAGE": "False"}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("secure")
    return {name: create_project(load_stack(name), root / name)
            for name in ("startup", "enterprise")}


@pytest.fixture()
def enterprise(projects: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the enterprise project (tests write .env and secrets/)."""
    copy = tmp_path / "enterprise"
    shutil.copytree(projects["enterprise"], copy, symlinks=True)
    return copy


def env_values(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", path.read_text(), re.MULTILINE))


def run(command: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in SECRETS and key not in DATABASE_URIS}
    env.update(extra)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if "error:" in line and "***" not in line]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


# ---- .env.example and make secrets ---------------------------------------------------------


def test_env_example_holds_no_working_secret(projects: dict[str, Path]) -> None:
    example = env_values(projects["enterprise"] / ".env.example")
    assert set(example) >= SECRETS
    for name in SECRETS:
        assert example[name] == "", name
    for name in DATABASE_URIS:
        assert re.fullmatch(r"postgresql(\+psycopg)?://mlops:@127\.0\.0\.1:5432/\w+",
                            example[name]), name
    assert "mlops-dev" not in (projects["enterprise"] / ".env.example").read_text()


def test_make_secrets_generates_every_empty_secret_once(enterprise: Path) -> None:
    (enterprise / ".env").write_text(
        (enterprise / ".env.example").read_text().replace(
            # pragma: allowlist nextline secret (a test value, not a credential)
            "SERVING_API_KEY=\n", "SERVING_API_KEY=a-key-the-user-chose-42\n"))
    first = run(["make", "--no-print-directory", "secrets"], enterprise)
    assert first.returncode == 0, first.stderr
    values = env_values(enterprise / ".env")
    # pragma: allowlist nextline secret (a test value, not a credential)
    assert values["SERVING_API_KEY"] == "a-key-the-user-chose-42"  # never overwritten
    generated = {name: values[name] for name in SECRETS - {"SERVING_API_KEY"}}
    assert len(set(generated.values())) == len(generated)
    for name, value in generated.items():
        assert re.fullmatch(r"[A-Za-z0-9_=-]{43,}", value), (name, value)
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    for name in DATABASE_URIS:
        assert f"://mlops:{values['POSTGRES_PASSWORD']}@127.0.0.1:5432/" in values[name]
    secret_file = enterprise / "secrets" / "mlflow_admin_password"
    assert secret_file.read_text() == values["MLFLOW_TRACKING_PASSWORD"]
    assert stat.S_IMODE((enterprise / ".env").stat().st_mode) == 0o600
    before = (enterprise / ".env").read_bytes()
    again = run(["make", "--no-print-directory", "secrets"], enterprise)
    assert again.returncode == 0, again.stderr
    assert (enterprise / ".env").read_bytes() == before  # idempotent


def test_make_secrets_creates_env_when_missing_and_setup_calls_it(enterprise: Path) -> None:
    assert not (enterprise / ".env").exists()
    result = run(["make", "--no-print-directory", "secrets"], enterprise)
    assert result.returncode == 0, result.stderr
    assert ".env created from .env.example" in result.stdout
    assert all(env_values(enterprise / ".env")[name] for name in SECRETS)
    dry = run(["make", "-n", "--no-print-directory", "setup"], enterprise, UV="uv")
    assert "secrets" in dry.stdout


def test_envfile_from_env_takes_secrets_from_the_ci_secret_store(enterprise: Path) -> None:
    """CI: `envfile.py from-env` puts a secret the CI system's store exports into .env."""
    package = next(path.name for path in (enterprise / "src").iterdir() if path.is_dir())
    # pragma: allowlist nextline secret (a test value, not a credential)
    chosen = "a-key-from-the-ci-secret-store-42"
    result = subprocess.run(
        [sys.executable, f"src/{package}/envfile.py", "from-env"], cwd=enterprise,
        env={**os.environ, "SERVING_API_KEY": chosen}, capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = env_values(enterprise / ".env")
    assert values["SERVING_API_KEY"] == chosen
    assert all(values[name] for name in SECRETS)
    assert chosen not in result.stdout + result.stderr  # names only, never values


@pytest.mark.parametrize("value", ["mlops-dev-api-key", "short", ""])
def test_public_or_weak_secrets_are_refused(enterprise: Path, value: str) -> None:
    run(["make", "--no-print-directory", "secrets"], enterprise)
    text = (enterprise / ".env").read_text()
    (enterprise / ".env").write_text(
        re.sub(r"^SERVING_API_KEY=.*$", f"SERVING_API_KEY={value}", text, flags=re.MULTILINE))
    if value == "":
        # make secrets fills an empty one; the services' own check refuses it as it is.
        result = run(["make", "--no-print-directory", "check-secrets"], enterprise)
    else:
        result = run(["make", "--no-print-directory", "secrets"], enterprise)
    assert result.returncode != 0
    assert "SERVING_API_KEY" in one_error_line(result.stderr)


def test_services_refuse_to_start_with_example_values(enterprise: Path) -> None:
    shutil.copy(enterprise / ".env.example", enterprise / ".env")
    values = env_values(enterprise / ".env")
    env = {name: value for name, value in values.items() if name not in SECRETS}
    result = run([sys.executable, "-m", "enterprise.platform.services", "mlflow", "--port", "1"],
                 enterprise, PYTHONPATH=str(enterprise / "src"), PROJECT_ROOT=str(enterprise),
                 **env)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("error: ") and "MLFLOW_TRACKING_PASSWORD is empty" in line
    assert "the password of MLFLOW_BACKEND_STORE_URI is empty" in line


def fake_tool(bin_dir: Path, name: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "{name} $*"\n')
    tool.chmod(0o755)


@pytest.mark.parametrize(("password", "refused"), [
    ("mlops-dev-admin-password", "public development value"),
    ("", "is empty"), ("short", "shorter than 12"), ("a-strong-generated-password", None),
])
def test_mlflow_entrypoint_refuses_weak_secrets(
    enterprise: Path, tmp_path: Path, password: str, refused: str | None
) -> None:
    fake_tool(tmp_path / "bin", "mlflow")
    (tmp_path / "password").write_text(password)
    result = run(["sh", "docker/mlflow-enterprise-entrypoint.sh"], enterprise,
                 PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", TMPDIR=str(tmp_path),
                 MLFLOW_ADMIN_PASSWORD_FILE=str(tmp_path / "password"),
                 # pragma: allowlist nextline secret (a test value, not a credential)
                 MLFLOW_FLASK_SERVER_SECRET_KEY="a-strong-flask-secret-key",
                 MLFLOW_BACKEND_STORE_URI="postgresql://u:p@db/mlflow",
                 MLFLOW_AUTH_DATABASE_URI="postgresql://u:p@db/auth",
                 MLFLOW_ARTIFACTS_DESTINATION="s3://bucket/mlflow")
    if refused is None:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("mlflow server")
    else:
        assert result.returncode == 1
        assert refused in one_error_line(result.stderr)


def test_airflow_entrypoint_refuses_weak_secrets(enterprise: Path, tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "airflow")
    # pragma: allowlist nextline secret (a test value, not a credential)
    strong = {"AIRFLOW__API_AUTH__JWT_SECRET": "a-strong-jwt-secret-value",
              "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    ok = run(["sh", "docker/airflow-entrypoint.sh", "scheduler"], enterprise, PATH=path, **strong)
    assert ok.returncode == 0 and ok.stdout.strip() == "airflow scheduler", ok.stderr
    for name, value in (("AIRFLOW__CORE__FERNET_KEY", ""),
                        ("AIRFLOW__API_AUTH__JWT_SECRET", "mlops-dev-airflow-jwt-secret"),
                        ("AIRFLOW_ADMIN_PASSWORD", "mlops-dev-airflow-password")):
        result = run(["sh", "docker/airflow-entrypoint.sh", "scheduler"], enterprise,
                     PATH=path, **{**strong, name: value})
        assert result.returncode == 1, name
        assert "make secrets" in one_error_line(result.stderr)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_refuses_to_start_without_generated_secrets(enterprise: Path) -> None:
    shutil.copy(enterprise / ".env.example", enterprise / ".env")
    command = ["docker-compose", "-f", "docker-compose.yml", "config", "-q"]
    refused = run(command, enterprise, COMPOSE_PROJECT_NAME="check")
    assert refused.returncode != 0
    assert "is empty in .env: run make secrets" in refused.stderr
    run(["make", "--no-print-directory", "secrets"], enterprise)
    accepted = run(command, enterprise, COMPOSE_PROJECT_NAME="check")
    assert accepted.returncode == 0, accepted.stderr


# ---- compose hardening ------------------------------------------------------------------


def compose(project: Path) -> dict[str, dict]:
    return yaml.safe_load((project / "docker-compose.yml").read_text())["services"]


@pytest.mark.parametrize("profile", ["startup", "enterprise"])
def test_every_container_is_hardened_and_limited(projects: dict[str, Path], profile: str) -> None:
    services = compose(projects[profile])
    writable_root = {name for name in services if name.startswith("airflow-")}
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service.get("cap_add", []) == (["CHOWN"] if name == "minio-volume" else []), name
        assert bool(service.get("read_only")) is (name not in writable_root), name
        assert re.fullmatch(r"\d+[mg]", str(service["mem_limit"])), name
        assert 0 < int(service["pids_limit"]) <= 4096, name
        if service.get("restart") != "no":
            assert 0 < float(service["cpus"]) <= 2, name
        assert str(service.get("user", "")).split(":")[0] not in {"root", "0"} or (
            name == "minio-volume"), name
    for name in ("mlflow", "serving"):
        assert any(mount.startswith("/tmp") for mount in services[name]["tmpfs"]), name
    if profile == "enterprise":
        assert services["minio"]["user"] == "10001:10001"
        assert services["minio"]["depends_on"] == {
            "minio-volume": {"condition": "service_completed_successfully"}}
        assert services["minio-volume"]["network_mode"] == "none"
        assert "chown -R 10001:10001 /data" in services["minio-volume"]["entrypoint"][-1]
        assert "/var/run/postgresql" in services["postgres"]["tmpfs"]


# ---- offline by default -------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["startup", "enterprise"])
def test_telemetry_opt_outs_everywhere(projects: dict[str, Path], profile: str) -> None:
    project = projects[profile]
    expected = dict(OFFLINE)
    if profile == "enterprise":
        expected |= {"RAY_USAGE_STATS_ENABLED": "0", "GX_ANALYTICS_ENABLED": "false"}
    example = env_values(project / ".env.example")
    assert {name: example.get(name) for name in expected} == expected
    services = compose(project)
    python_services = [n for n in services if n in {"mlflow", "serving"} or n.startswith("airflow")]
    for name in python_services:
        environment = services[name]["environment"]
        assert {key: environment.get(key) for key in expected} == expected, name
    if profile == "enterprise":
        for name in (n for n in services if n.startswith("airflow")):
            assert services[name]["environment"]["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == (
                "False")
        grafana = services["grafana"]["environment"]
        assert grafana["GF_ANALYTICS_REPORTING_ENABLED"] == "false"
        assert grafana["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
        assert grafana["GF_PLUGINS_PREINSTALL_DISABLED"] == "true"
    # The Makefile exports them to every command it runs (no .env needed).
    printed = run(["make", "--no-print-directory", "--eval=print-env: ; @env", "print-env"],
                  project, UV="uv")
    exported = dict(line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    assert {name: exported.get(name) for name in expected} == expected
    dvc_config = (project / ".dvc" / "config").read_text()
    assert "analytics = false" in dvc_config and "check_update = false" in dvc_config


# ---- image digests ------------------------------------------------------------------------


def test_pin_images_pins_pulled_images_by_digest(enterprise: Path, tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "crane").write_text(f'#!/bin/sh\necho "{digest}"\n')
    (bin_dir / "crane").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    result = run([sys.executable, "docker/pin_images.py"], enterprise, PATH=path)
    assert result.returncode == 0, result.stderr
    services = compose(enterprise)
    for name, service in services.items():
        if "build" in service:
            assert "@" not in service["image"], name  # built here: nothing to pin
        else:
            assert service["image"].endswith(f"@{digest}"), name
    for dockerfile in (enterprise / "docker").glob("*Dockerfile*"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("FROM ") and " AS " in line and ":" in line.split()[1]:
                assert line.split()[1].endswith(f"@{digest}"), line
    before = (enterprise / "docker-compose.yml").read_text()
    assert run([sys.executable, "docker/pin_images.py"], enterprise, PATH=path).returncode == 0
    assert (enterprise / "docker-compose.yml").read_text() == before
    assert before.count(f"@{digest}") == sum("build" not in s for s in services.values())
