"""``update_project`` refuses unsafe states before touching anything, and adopts projects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_scaffold.errors import MergeConflictError, ProjectError
from mlops_scaffold.gitutil import TEMPLATE_BRANCH
from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from mlops_scaffold.update import find_base, update_project

from .helpers import FixtureTemplate, commit_all, rendered_readme, run_git, status


def snapshot(project: Path) -> tuple[str, str, str]:
    return (
        run_git(project, "for-each-ref"),
        run_git(project, "status", "--porcelain"),
        (project / "README.md").read_text(),
    )


def refused(project: Path, template: FixtureTemplate, match: str) -> None:
    with pytest.raises(ProjectError, match=match):
        update_project(project, template=template.root)


def test_modified_tracked_file_is_refused(project: Path, template: FixtureTemplate) -> None:
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    (project / "README.md").write_text("unsaved work\n")
    before = snapshot(project)

    refused(project, template, r"uncommitted changes \(M README.md\)")

    assert snapshot(project) == before
    assert (project / "README.md").read_text() == "unsaved work\n"


def test_untracked_file_is_refused(project: Path, template: FixtureTemplate) -> None:
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    (project / "scratch.txt").write_text("draft\n")
    before = snapshot(project)

    refused(project, template, r"uncommitted changes \(\?\? scratch.txt\)")

    assert snapshot(project) == before


def test_merge_in_progress_is_refused(project: Path, template: FixtureTemplate) -> None:
    (project / "README.md").write_text(rendered_readme().replace("Line two.", "Mine."))
    commit_all(project)
    template.replace("README.md.jinja", "Line two.", "Template.")
    with pytest.raises(MergeConflictError):
        update_project(project, template=template.root)
    run_git(project, "add", "-A")  # "resolved", not committed yet: only MERGE_HEAD remains

    refused(project, template, "a merge is in progress")


def test_not_a_generated_project_is_refused(tmp_path: Path, template: FixtureTemplate) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README.md").write_text("hello\n")
    run_git(plain, "init", "-q")
    commit_all(plain)

    refused(plain, template, r"not a generated project \(.copier-answers.yml is missing\)")


def test_missing_directory_is_refused(tmp_path: Path, template: FixtureTemplate) -> None:
    refused(tmp_path / "nope", template, "not a directory")


def test_not_a_git_repository_is_refused_with_adoption_steps(
    tmp_path: Path, template: FixtureTemplate
) -> None:
    project = create_project(
        load_stack(profile="startup"), tmp_path / "demo", init_git=False, template=template.root
    )
    files = sorted(p.name for p in project.iterdir())

    refused(project, template, r"not a git repository; to adopt it: git init && git add -A")

    assert sorted(p.name for p in project.iterdir()) == files


def test_project_nested_in_another_repository_is_refused(
    tmp_path: Path, template: FixtureTemplate
) -> None:
    outer = tmp_path / "mono"
    project = create_project(
        load_stack(profile="startup"), outer / "demo", init_git=False, template=template.root
    )
    run_git(outer, "init", "-q")
    commit_all(outer)

    refused(project, template, f"is inside the git repository {outer}")


def test_repository_without_commits_is_refused(tmp_path: Path, template: FixtureTemplate) -> None:
    project = create_project(
        load_stack(profile="startup"), tmp_path / "demo", init_git=False, template=template.root
    )
    run_git(project, "init", "-q")

    refused(project, template, "no commit yet")


def test_adopting_an_untouched_project_then_updating_it(
    tmp_path: Path, template: FixtureTemplate
) -> None:
    project = create_project(
        load_stack(profile="startup"), tmp_path / "demo", init_git=False, template=template.root
    )
    run_git(project, "init", "-q", "-b", "main")
    commit_all(project, "Adopt generated project")
    refused(project, template, r"no render commit .* update --adopt` merges the template")

    adopted = update_project(project, adopt=True, template=template.root)

    assert adopted.status == "adopted"
    assert adopted.base is None
    assert adopted.changes.files == []
    assert find_base(project) == adopted.render_commit
    assert run_git(project, "rev-parse", TEMPLATE_BRANCH).strip() == adopted.render_commit
    assert update_project(project, template=template.root).status == "up-to-date"

    (project / "README.md").write_text(rendered_readme().replace("Line five.", "Mine."))
    commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    updated = update_project(project, template=template.root)

    assert updated.status == "updated"
    assert updated.base == adopted.render_commit
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, new."
    ).replace("Line five.", "Mine.")


def test_adoption_shows_every_difference_as_a_conflict(
    tmp_path: Path, template: FixtureTemplate
) -> None:
    project = create_project(
        load_stack(profile="startup"), tmp_path / "demo", init_git=False, template=template.root
    )
    (project / "README.md").write_text(rendered_readme().replace("Line five.", "Mine."))
    (project / "notes.txt").unlink()
    run_git(project, "init", "-q", "-b", "main")
    commit_all(project, "Adopt generated project")
    template.write("docs/new.md", "New.\n")

    with pytest.raises(MergeConflictError) as caught:
        update_project(project, adopt=True, template=template.root)

    # Without a common ancestor git cannot know the edit is the user's: it asks.
    assert caught.value.files == ["README.md"]
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line five.\n",
        "<<<<<<< HEAD\nMine.\n=======\nLine five.\n"
        f">>>>>>> {run_git(project, 'rev-parse', TEMPLATE_BRANCH).strip()}\n",
    )
    assert (project / "docs" / "new.md").read_text() == "New.\n"
    assert "A  notes.txt\n" in status(project)  # brought back in plain sight, not committed


def test_template_file_clashing_with_an_ignored_file_is_refused(
    project: Path, template: FixtureTemplate
) -> None:
    (project / ".gitignore").write_text("local.cfg\n")
    commit_all(project)
    (project / "local.cfg").write_text("my secrets\n")
    template.write("local.cfg", "template config\n")

    refused(
        project,
        template,
        r"would overwrite or delete files git does not track: local.cfg \(an untracked or "
        "ignored file\\)",
    )

    assert (project / "local.cfg").read_text() == "my secrets\n"
    assert run_git(project, "rev-list", "--count", "HEAD").strip() == "2"


def test_project_moved_after_generation_still_updates(
    project: Path, template: FixtureTemplate, tmp_path: Path
) -> None:
    moved = tmp_path / "renamed-dir"
    shutil.move(project, moved)
    template.replace("README.md.jinja", "Line one.", "Line one, new.")

    update_project(moved, template=template.root)

    assert (moved / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, new."
    )


def test_template_change_to_a_file_the_user_untracked_and_ignores_is_refused(
    project: Path, template: FixtureTemplate
) -> None:
    run_git(project, "rm", "-q", "--cached", "notes.txt")
    (project / ".gitignore").write_text("notes.txt\n")
    commit_all(project)
    (project / "notes.txt").write_text("my local notes\n")
    template.write("notes.txt", "Notes, revised by the template.\n")

    refused(project, template, r"does not track: notes.txt \(an untracked or ignored file\)")

    assert (project / "notes.txt").read_text() == "my local notes\n"
