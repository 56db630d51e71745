"""Render every profile and run the generated project's own checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import create_project
from tests.envs import project_env
from tests.generated_suite import run_generated_pytest
from tests.render.conftest import VARIANTS, compose_config, variant_stack

pytestmark = pytest.mark.render

# `${{` is GitHub Actions; `{{ $labels.x }}`/`{{ .Field }}` are Go templates (Prometheus
# alert annotations, Alertmanager): a leftover Jinja expression starts with a name.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{(?!\s*[$.])|\{%|\{#")
TEXT_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".md", ".cfg", ".txt", ".json", ".ini", ""}


def text_files(project: Path) -> list[Path]:
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.parts and path.suffix in TEXT_SUFFIXES
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_unrendered_jinja(rendered: dict[str, Path], variant: str) -> None:
    project = rendered[variant]
    offenders = [
        f"{path.relative_to(project)}:{number}"
        for path in text_files(project)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if LEFTOVER_JINJA.search(line)
    ]
    assert offenders == []
    assert not list(project.rglob("*.jinja"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_answers_record_profile_and_version(rendered: dict[str, Path], variant: str) -> None:
    answers = yaml.safe_load((rendered[variant] / ".copier-answers.yml").read_text())
    assert answers["profile"]
    assert answers["scaffold_version"]
    assert answers["project_name"] == rendered[variant].name


def test_optional_components_drop_their_files(rendered: dict[str, Path]) -> None:
    full, lean = rendered["startup"], rendered["startup-lean"]
    assert (full / "src" / "startup" / "pipeline" / "tune.py").is_file()
    assert not (lean / "src" / "startup_lean" / "pipeline" / "tune.py").exists()
    assert "tune" in yaml.safe_load((full / "dvc.yaml").read_text())["stages"]
    assert "tune" not in yaml.safe_load((lean / "dvc.yaml").read_text())["stages"]
    assert (full / ".github" / "workflows" / "ci.yml").is_file()
    assert not (lean / ".github").exists()
    example = rendered["example-custom-stack"]
    assert "8080" in (example / "docker-compose.yml").read_text()


def test_secrets_only_in_ignored_env(rendered: dict[str, Path]) -> None:
    project = rendered["startup"]
    assert (project / ".env.example").is_file()
    ignored = subprocess.run(["git", "check-ignore", ".env"], cwd=project, check=False)
    assert ignored.returncode == 0
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True,
                             check=True).stdout.split()
    assert ".env" not in tracked


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_file_is_valid_and_loopback_only(rendered: dict[str, Path], variant: str) -> None:
    project = rendered[variant]
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    assert "name" not in compose, "docker-compose 1.29 rejects a top-level name"
    for name, service in compose["services"].items():
        assert "healthcheck" in service or service.get("restart") == "no", name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] in {"service_healthy", "service_completed_successfully"}
    result = compose_config(project)
    if result is not None:
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variant", ["startup", "startup-s3", "enterprise"])
def test_compose_file_matches_compose_spec_schema(rendered: dict[str, Path], variant: str) -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=rendered[variant], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_compose_variable_is_in_env_example(rendered: dict[str, Path], variant: str) -> None:
    project = rendered[variant]
    used = set(COMPOSE_VARIABLE.findall((project / "docker-compose.yml").read_text()))
    example = (project / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert used - listed == set()


# ---- the enterprise compose stack --------------------------------------------------------

ENTERPRISE_SERVICES = {
    "postgres", "redis", "minio-volume", "minio", "minio-init", "mlflow", "serving",
    "prometheus", "alertmanager", "otel-collector", "grafana",
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
}
ONE_SHOTS = {"minio-volume", "minio-init", "airflow-init"}
# Long-running but distroless (no shell, no HTTP client to probe with): restart "no", no
# healthcheck, and nothing depends on it (serving's exporter just logs failed exports).
UNPROBED = {"otel-collector"}
PUBLISHED = {"mlflow": 5000, "serving": 8000, "prometheus": 9090, "grafana": 3000,
             "airflow-apiserver": 8080, "alertmanager": 9093}
PIN = re.compile(r"([A-Za-z0-9_.-]+(?:\[[a-z0-9,]+\])?)==([0-9][^\s\"',]*)")


def pins(text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` in ``text`` (extras dropped)."""
    return {name.split("[")[0].lower(): version for name, version in PIN.findall(text)}


def test_startup_with_s3_gets_minio_and_proxied_artifacts_without_postgres(
    rendered: dict[str, Path],
) -> None:
    """artifact_store=s3 and data_remote=s3 own the bucket, whatever the tracking backend."""
    project = rendered["startup-s3"]
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]
    assert set(services) == {"mlflow", "serving", "prometheus", "alertmanager",
                             "otel-collector", "minio-volume", "minio", "minio-init"}
    mlflow = services["mlflow"]
    assert mlflow["build"]["dockerfile"] == "docker/mlflow.Dockerfile"
    assert mlflow["depends_on"] == {"minio-init": {"condition": "service_completed_successfully"}}
    assert mlflow["environment"]["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://${S3_BUCKET:-mlops}/mlflow"
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mlflow-data:/mlflow" in mlflow["volumes"]  # the SQLite store stays on its volume
    assert services["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    image = (project / "docker" / "mlflow.Dockerfile").read_text()
    assert "boto3==" in image and '$MLFLOW_ARTIFACTS_DESTINATION' in image
    env_example = (project / ".env.example").read_text()
    for line in ("AWS_ENDPOINT_URL=", "AWS_SECRET_ACCESS_KEY=\n", "S3_BUCKET=mlops",
                 "MLFLOW_ARTIFACT_LOCATION=mlflow-artifacts:/churn"):
        assert line in env_example, line
    assert "POSTGRES" not in env_example and "FEAST_REDIS" not in env_example
    package = project / "src" / "startup_s3"
    for module in ("platform/s3.py", "verify/s3.py", "platform/dvc_remote.py",
                   "verify/dvc_remote.py", "envfile.py"):
        assert (package / module).is_file(), module
    assert not (package / "platform" / "services.py").exists()
    plan = (package / "verify" / "plan.py").read_text()
    for step in ("s3.step_s3_bucket", "s3.step_artifacts_on_s3", "dvc_remote.step_dvc_remote"):
        assert step in plan
    makefile = (project / "Makefile").read_text()
    assert '--artifacts-destination "s3://$(S3_BUCKET)/mlflow"' in makefile
    assert "python -m $(PACKAGE).platform.s3" in makefile
    # startup itself keeps local artifacts and no bucket
    startup = rendered["startup"]
    plain = yaml.safe_load((startup / "docker-compose.yml").read_text())["services"]
    assert set(plain) == {"mlflow", "serving", "prometheus", "alertmanager", "otel-collector"}
    assert not (startup / "src" / "startup" / "s3.py").exists()


@pytest.fixture(scope="module")
def enterprise(rendered: dict[str, Path]) -> tuple[Path, dict]:
    project = rendered["enterprise"]
    return project, yaml.safe_load((project / "docker-compose.yml").read_text())


def test_enterprise_compose_services_healthchecks_and_order(enterprise: tuple[Path, dict]) -> None:
    _, compose = enterprise
    services = compose["services"]
    assert set(services) == ENTERPRISE_SERVICES
    for name, service in services.items():
        if name in ONE_SHOTS or name in UNPROBED:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
        else:
            test = service["healthcheck"]["test"]
            assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
    order = {name: {dep: spec["condition"] for dep, spec in (s.get("depends_on") or {}).items()}
             for name, s in services.items()}
    for name, deps in order.items():
        for dep, condition in deps.items():
            expected = ("service_completed_successfully" if dep in ONE_SHOTS
                        else "service_healthy")
            assert condition == expected, f"{name} -> {dep}"
    assert order["mlflow"] == {"postgres": "service_healthy",
                               "minio-init": "service_completed_successfully"}
    assert order["minio-init"] == {"minio": "service_healthy"}
    assert order["minio"] == {"minio-volume": "service_completed_successfully"}
    assert order["airflow-init"] == {"postgres": "service_healthy"}
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        assert order[name]["airflow-init"] == "service_completed_successfully"
    assert {"mlflow", "redis"} <= set(order["serving"])
    volumes = set(compose["volumes"])
    assert {"postgres-data", "redis-data", "minio-data", "grafana-data", "prometheus-data",
            "airflow-logs"} <= volumes
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            assert source.startswith(".") or source in volumes, f"{name}: {mount}"


def test_enterprise_compose_publishes_user_facing_ports_on_loopback_only(
    enterprise: tuple[Path, dict],
) -> None:
    _, compose = enterprise
    published = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host, _, container = str(port).rpartition(":")
            assert host.startswith("127.0.0.1:"), f"{name} publishes {port}"
            published[name] = int(container)
    assert published == PUBLISHED
    env = compose["services"]["mlflow"]["environment"]
    # The MLflow image ships psycopg2 only; SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3.
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI"):
        assert env[name].startswith("postgresql+psycopg2://mlops:"), name
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert compose["services"]["serving"]["environment"]["MLFLOW_TRACKING_URI"] == (
        "http://mlflow:5000")


def test_enterprise_containers_run_unprivileged(enterprise: tuple[Path, dict]) -> None:
    project, compose = enterprise
    services = compose["services"]
    for name in ("mlflow", "serving"):
        dockerfile = project / services[name]["build"]["dockerfile"]
        users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
        assert users and users[-1].split(":")[0] not in {"root", "0"}, name
    airflow = project / services["airflow-scheduler"]["build"]["dockerfile"]
    assert re.findall(r"^USER\s+(\S+)", airflow.read_text(), flags=re.MULTILINE)[-1] == "10001:0"
    for name in ("postgres", "redis", "minio", "minio-init",
                 *(n for n in services if "airflow" in n)):
        assert str(services[name]["user"]).split(":")[0] not in {"root", "0"}, name
    # MinIO's image has no unprivileged user: uid 10001, its volume handed over by a
    # one-shot that may only chown, without network.
    assert services["minio"]["user"] == "10001:10001"
    assert services["minio-volume"]["cap_add"] == ["CHOWN"]
    assert services["minio-volume"]["network_mode"] == "none"


def test_enterprise_mlflow_password_is_a_mounted_secret(enterprise: tuple[Path, dict]) -> None:
    project, compose = enterprise
    services = compose["services"]
    assert compose["secrets"] == {
        "mlflow_admin_password": {"file": "./secrets/mlflow_admin_password"}}
    assert services["prometheus"]["secrets"] == ["mlflow_admin_password"]
    assert services["mlflow"]["secrets"] == ["mlflow_admin_password"]
    prometheus = yaml.safe_load((project / "monitoring" / "prometheus.yml").read_text())
    mlflow_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "mlflow")
    assert mlflow_job["basic_auth"] == {
        "username": "admin", "password_file": "/run/secrets/mlflow_admin_password"}
    ignored = subprocess.run(["git", "check-ignore", "secrets/mlflow_admin_password", ".env"],
                             cwd=project, capture_output=True, text=True, check=False)
    assert ignored.stdout.split() == ["secrets/mlflow_admin_password", ".env"]
    assert "secrets" in (project / ".dockerignore").read_text().split()
    # .env.example holds no secret at all (a PASSWORD/SECRET/KEY variable or the password
    # of a URI): `make secrets` generates them into .env (tests/security). No development
    # value of earlier versions is left in any committed file.
    example = (project / ".env.example").read_text()
    secret_names = [key for key, _ in re.findall(r"^([A-Z_]+)=(.*)$", example, re.MULTILINE)
                    if re.search(r"PASSWORD|SECRET|API_KEY|FERNET", key)]
    assert len(secret_names) >= 9
    for key, value in re.findall(r"^([A-Z_]+)=(.*)$", example, re.MULTILINE):
        assert key not in secret_names or value == "", key
    assert re.findall(r"://[^:/@\s]+:([^@\s]*)@", example) == ["", "", ""]
    secrets = ["mlops-dev-password", "mlops-dev-secret", "mlops-dev-admin-password",
               "mlops-dev-flask-secret", "mlops-dev-api-key", "mlops-dev-grafana-password",
               "mlops-dev-airflow-password", "mlops-dev-airflow-jwt-secret"]
    checked = 0
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True,
                             check=True).stdout.split()
    for path in tracked:
        if path == ".env.example" or path.startswith("tests/"):
            continue
        text = (project / path).read_text(encoding="utf-8", errors="replace")
        for value in secrets:
            assert value not in text, f"{path} contains a former development secret"
        checked += 1
    assert checked >= 20


def test_enterprise_mlflow_image_matches_the_project_pins(enterprise: tuple[Path, dict]) -> None:
    project, compose = enterprise
    service = compose["services"]["mlflow"]
    assert service["build"]["dockerfile"] == "docker/mlflow-enterprise.Dockerfile"
    dockerfile = (project / "docker" / "mlflow-enterprise.Dockerfile").read_text()
    image = pins(dockerfile)
    project_pins = pins((project / "pyproject.toml").read_text())
    assert {"mlflow", "psycopg2-binary", "boto3", "prometheus-flask-exporter"} <= set(image)
    assert '"mlflow[auth]==' in dockerfile
    for name, version in image.items():
        if name != "uv":
            assert project_pins.get(name) == version, name
    entrypoint = (project / "docker" / "mlflow-enterprise-entrypoint.sh").read_text()
    assert "mlflow-enterprise-entrypoint.sh" in dockerfile
    for flag in ("--backend-store-uri", "--serve-artifacts", "--artifacts-destination",
                 "--app-name basic-auth", "--expose-prometheus"):
        assert flag in entrypoint, flag
    assert service["environment"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert service["environment"]["MLFLOW_ADMIN_PASSWORD_FILE"] == (
        "/run/secrets/mlflow_admin_password")
    assert not (project / "docker" / "mlflow.Dockerfile").exists()


def test_enterprise_airflow_services_use_the_project_airflow_pins(
    enterprise: tuple[Path, dict], rendered: dict[str, Path],
) -> None:
    project, compose = enterprise
    requirements = (project / "docker" / "airflow-requirements.txt").read_text()
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert lines and all(PIN.fullmatch(line) for line in lines), lines
    airflow_pins = pins(requirements)
    assert airflow_pins["apache-airflow"].startswith("3.")
    # Shared packages (the metadata DB driver) at the project's versions.
    project_pins = pins((project / "pyproject.toml").read_text())
    for name in set(airflow_pins) & set(project_pins):
        assert airflow_pins[name] == project_pins[name], name
    dockerfile = (project / "docker" / "airflow.Dockerfile").read_text()
    assert "-r /tmp/airflow-requirements.txt" in dockerfile
    assert "COPY docker/airflow-requirements.txt" in dockerfile
    assert "apache-airflow" not in dockerfile.replace("airflow-requirements", "")
    services = {n: s for n, s in compose["services"].items() if n.startswith("airflow-")}
    assert {s["build"]["dockerfile"] for s in services.values()} == {"docker/airflow.Dockerfile"}
    assert len({s["image"] for s in services.values()}) == 1
    commands = {n: s["command"][0] for n, s in services.items()}
    assert commands == {"airflow-init": "db", "airflow-apiserver": "api-server",
                        "airflow-scheduler": "scheduler", "airflow-dag-processor": "dag-processor"}
    for name, service in services.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/app/dags", name
        assert ".:/app" in service["volumes"], name
    assert "airflow" in (project / "docker" / "postgres-init.sh").read_text()
    assert (project / "dags" / "enterprise_pipeline.py").is_file()
    # Profiles without Airflow get none of its files.
    startup = rendered["startup"]
    assert not list((startup / "docker").glob("airflow*"))
    assert not (startup / "docker" / "mlflow-enterprise.Dockerfile").exists()
    assert (startup / "docker" / "mlflow.Dockerfile").is_file()


@pytest.mark.parametrize("variant", ["startup", "startup-lean", "kubernetes"])
def test_generated_project_passes_its_own_ruff_and_pytest(
    variant: str, tmp_path: Path
) -> None:
    """ruff, then the generated suite's modules no other stack ran (tests/generated_suite.py).

    Rendered here under a distinctive package name (``gen_startup``: ``startup`` is also a
    serving mode), so the fingerprints of equal code match across stacks.
    """
    project = create_project(variant_stack(variant), tmp_path / f"gen_{variant.replace('-', '_')}")
    venv = project_env(project)
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "PATH":
           f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    lint = subprocess.run([str(venv / "bin" / "ruff"), "check", "."], cwd=project,
                          capture_output=True, text=True, env=env, check=False)
    assert lint.returncode == 0, lint.stdout
    tests, skipped = run_generated_pytest(project, venv / "bin" / "python", env)
    print(f"{variant}: modules covered by an earlier identical run: {skipped}")
    if tests is not None:
        # exit 0: tests ran and passed (pytest exits 5 when it collects none)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
