from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops_scaffold import __version__
from mlops_scaffold.cli import app


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mlops-scaffold {__version__}"


def test_profiles_lists_startup(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profiles"])
    assert result.exit_code == 0
    assert "startup" in result.stdout
    assert "tracking=mlflow" in result.stdout


def test_show_prints_resolved_yaml(runner: CliRunner, repo_root: Path) -> None:
    result = runner.invoke(app, ["show", str(repo_root / "examples" / "custom-stack.yaml")])
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown["slots"]["tuning"] == "none"
    assert shown["slots"]["tracking"] == "mlflow"
    assert shown["settings"]["serving_port"] == 8080


def test_new_creates_git_project_with_answers(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "churn-app"
    result = runner.invoke(app, ["new", str(dest), "--profile", "startup", "--defaults",
                                 "--set", "serving_port=8123"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["profile"] == "startup"
    assert answers["serving_port"] == 8123
    assert answers["project_name"] == "churn-app"
    assert answers["scaffold_version"] == __version__
    assert (dest / ".git").is_dir()
    assert (dest / "src" / "churn_app" / "config.py").is_file()
    leftovers = [name for name in os.listdir(tmp_path) if name != "churn-app"]
    assert leftovers == []


def test_new_into_existing_empty_dir_and_no_git(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    result = runner.invoke(app, ["new", str(dest), "-p", "startup", "--defaults", "--no-git"])
    assert result.exit_code == 0, result.output
    assert (dest / "pyproject.toml").is_file()
    assert not (dest / ".git").exists()


def test_dry_run_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "planned"
    result = runner.invoke(app, ["new", str(dest), "-p", "startup", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "127.0.0.1:8000" in result.stdout
    assert "pyproject.toml" in result.stdout
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["new", "{tmp}/x"], 2, "give exactly one of --profile NAME or --stack FILE"),
        (["new", "{tmp}/x", "-p", "startup", "-s", "a.yaml"], 2, "exactly one"),
        (["new", "{tmp}/x", "-p", "nope"], 1, "unknown profile 'nope'"),
        (["new", "{tmp}/x", "-p", "startup", "--set", "tuning=ray"], 1,
         "allows optuna, ray-tune, none"),
        (["new", "{tmp}/x", "-s", "{tmp}/missing.yaml"], 1, "stack file not found"),
        (["new", "{tmp}/9bad", "-p", "startup"], 1, "must start with a letter"),
        (["show", "nope"], 1, "unknown profile 'nope'"),
        (["verify", "{tmp}"], 1, "not a generated project"),
        (["verify", "{tmp}", "--runtime", "k8s"], 2, "--runtime 'k8s': allowed runtimes"),
        (["smoke", "-p", "startup", "--runtime", "podman"], 2,
         "allowed runtimes are native, docker"),
        (["smoke", "-p", "nope"], 1, "unknown profile 'nope'"),
    ],
)
def test_user_errors_are_one_line_with_exit_code(
    runner: CliRunner, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(app, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_non_empty_destination_is_refused_and_untouched(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["new", str(dest), "-p", "startup", "--defaults"])
    assert result.exit_code == 1
    assert "exists and is not empty" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_failed_render_leaves_nothing_behind(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_scaffold import project
    from mlops_scaffold.errors import RenderError

    def half_render(answers: dict[str, object], destination: Path, **_: object) -> None:
        destination.mkdir(parents=True)
        (destination / "half-written.txt").write_text("partial")
        raise RenderError("template rejected the answers: boom")

    monkeypatch.setattr(project, "render", half_render)
    dest = tmp_path / "never"
    result = runner.invoke(app, ["new", str(dest), "-p", "startup", "--defaults"])
    assert result.exit_code == 1
    assert "boom" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_verify_requires_setup(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    assert runner.invoke(app, ["new", str(dest), "-p", "startup", "--defaults"]).exit_code == 0
    result = runner.invoke(app, ["verify", str(dest)])
    assert result.exit_code == 1
    assert "run `make setup` there first" in result.stderr
