"""``update`` on the real startup template: a component switched off, the user's edit kept."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mlops_scaffold.answers import project_answers
from mlops_scaffold.project import create_project, plan_project
from mlops_scaffold.render import render
from mlops_scaffold.stacks import load_stack
from mlops_scaffold.update import update_project

from .helpers import commit_all, run_git, status


def test_switching_tuning_off_removes_its_files_and_keeps_the_edit(tmp_path: Path) -> None:
    startup = load_stack(profile="startup")
    lean = load_stack(profile="startup", overrides=["tuning=none"])
    project = create_project(startup, tmp_path / "churn")
    with_tuning = set(run_git(project, "ls-files").splitlines())
    tuning_files = sorted(with_tuning - set(plan_project(lean, tmp_path / "plan" / "churn").files))
    gitignore = (project / ".gitignore").read_text()
    (project / ".gitignore").write_text(gitignore + "/my-scratch/\n")
    commit_all(project, "Ignore my scratch dir")

    result = update_project(project, ["tuning=none"])

    assert result.status == "updated"
    assert result.changes.removed == tuning_files
    assert "src/churn/pipeline/tune.py" in with_tuning
    assert "src/churn/pipeline/tune.py" in result.changes.removed
    for name in tuning_files:
        assert not (project / name).exists(), name
    assert (project / ".gitignore").read_text() == gitignore + "/my-scratch/\n"
    assert "tuning: none\n" in (project / ".copier-answers.yml").read_text()
    assert status(project) == ""
    assert update_project(project).status == "up-to-date"


def test_free_text_answers_are_escaped_in_pyproject(tmp_path: Path) -> None:
    description = 'The "best" churn model \\ with ünïcode ✓ and a # sign'
    answers = {**project_answers(load_stack(profile="startup"), tmp_path / "churn")}
    answers["description"] = description

    render(answers, tmp_path / "churn")

    pyproject = tomllib.loads((tmp_path / "churn" / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["description"] == description
    assert description in (tmp_path / "churn" / "README.md").read_text("utf-8")
