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

from tests.envs import project_env
from tests.render.conftest import VARIANTS

pytestmark = pytest.mark.render

LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")
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
    assert (full / "src" / "startup" / "tune.py").is_file()
    assert not (lean / "src" / "startup_lean" / "tune.py").exists()
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
    if shutil.which("docker-compose"):
        env = {**os.environ, "COMPOSE_PROJECT_NAME": "check"}
        result = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
                                cwd=project, capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stderr


def test_compose_file_matches_compose_spec_schema(rendered: dict[str, Path]) -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=rendered["startup"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["startup", "startup-lean", "kubernetes"])
def test_generated_project_passes_its_own_ruff_and_pytest(
    rendered: dict[str, Path], variant: str
) -> None:
    project = rendered[variant]
    venv = project_env(project)
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "PATH":
           f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    lint = subprocess.run([str(venv / "bin" / "ruff"), "check", "."], cwd=project,
                          capture_output=True, text=True, env=env, check=False)
    assert lint.returncode == 0, lint.stdout
    tests = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-p",
                            "no:cacheprovider"], cwd=project, capture_output=True, text=True,
                           env=env, check=False)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert re.search(r"\d+ passed", tests.stdout)
