"""``update`` on the real startup template: a component switched off, the user's edit kept."""

from __future__ import annotations

from pathlib import Path

from mlops_scaffold.project import create_project, plan_project
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
    if "src/churn/tune.py" in with_tuning:
        assert "src/churn/tune.py" in result.changes.removed
    for name in tuning_files:
        assert not (project / name).exists(), name
    assert (project / ".gitignore").read_text() == gitignore + "/my-scratch/\n"
    assert "tuning: none\n" in (project / ".copier-answers.yml").read_text()
    assert status(project) == ""
    assert update_project(project).status == "up-to-date"
