"""The repository is also a plain Copier template: ``copier copy`` then ``copier update``.

The root ``copier.yml`` includes ``templates/copier.yml`` (the single source of questions)
and points ``_subdirectory`` at ``templates/project``; the root link ``components`` lets the
shared files include component fragments. The test copies all three into a tmp git
repository, tags v1, copies a project, changes the template, tags v2 and updates.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import commit_all, run_git, status

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copier_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "COPIER_CACHE_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "xdg" / name.lower()))
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(tmp_path / "xdg" / "copier-settings.yml"))


def copier(cwd: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "copier", *args, "--quiet"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def template_repo(root: Path) -> Path:
    root.mkdir()
    shutil.copy2(REPO_ROOT / "copier.yml", root / "copier.yml")
    # the link shared files include component fragments through (see copier.yml)
    (root / "components").symlink_to((REPO_ROOT / "components").readlink())
    shutil.copytree(
        REPO_ROOT / "templates", root / "templates", ignore=shutil.ignore_patterns("__pycache__")
    )
    run_git(root, "init", "-q", "-b", "main")
    commit_all(root, "v1")
    run_git(root, "tag", "v1")
    return root


@pytest.mark.usefixtures("copier_env")
def test_copier_copy_and_update_from_the_repository(tmp_path: Path) -> None:
    source = template_repo(tmp_path / "mlops-scaffold")
    project = tmp_path / "churn"
    copier(tmp_path, "copy", "--vcs-ref", "v1", "--defaults", "--trust", str(source), str(project))
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1"
    assert answers["tuning"] == "optuna"
    assert (project / "src" / "churn_demo" / "config.py").is_file()
    run_git(project, "init", "-q", "-b", "main")
    commit_all(project, "Generate with copier")
    gitignore = (project / ".gitignore").read_text()
    (project / ".gitignore").write_text("# mine\n" + gitignore)
    commit_all(project, "My edit")

    (source / "templates" / "project" / "CHANGELOG.md").write_text("Added in v2.\n")
    ignore_file = source / "templates" / "components" / "vcs" / "ignore-patterns.txt"
    ignore_file.write_text(ignore_file.read_text() + "/v2-cache/\n")
    commit_all(source, "v2")
    run_git(source, "tag", "v2")
    copier(project, "update", "--defaults", "--trust", "--vcs-ref", "v2")

    assert (project / "CHANGELOG.md").read_text() == "Added in v2.\n"
    assert (project / ".gitignore").read_text() == "# mine\n" + gitignore + "/v2-cache/\n"
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"
    assert sorted(status(project).splitlines()) == [
        " M .copier-answers.yml",
        " M .gitignore",
        "?? CHANGELOG.md",
    ]


def test_root_copier_yml_only_includes_the_template_questions() -> None:
    class IncludeLoader(yaml.SafeLoader):
        pass

    IncludeLoader.add_constructor(
        "!include", lambda loader, node: {"!include": loader.construct_scalar(node)}
    )
    text = (REPO_ROOT / "copier.yml").read_text()
    documents = [doc for doc in yaml.load_all(text, Loader=IncludeLoader) if doc]

    assert documents == [
        {"!include": "templates/copier.yml"},
        {"_subdirectory": "templates/project"},
    ]
