"""``update_project`` merges template changes into a user's project: exact results."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_scaffold import answers as answers_module
from mlops_scaffold import update as update_module
from mlops_scaffold.errors import MergeConflictError
from mlops_scaffold.gitutil import RENDER_TRAILER, TEMPLATE_BRANCH, TREE_TRAILER
from mlops_scaffold.update import UpdateResult, find_base, update_project

from .helpers import LOGO, FixtureTemplate, commit_all, rendered_readme, run_git, status

NOTES = "Notes shipped by the template.\n"


def update(project: Path, template: FixtureTemplate, *overrides: str) -> UpdateResult:
    return update_project(project, overrides, template=template.root)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def parents(project: Path, revision: str = "HEAD") -> list[str]:
    return run_git(project, "rev-list", "--parents", "-n1", revision).split()[1:]


def test_new_and_update_record_the_rendered_tree(project: Path, template: FixtureTemplate) -> None:
    first = run_git(project, "log", "-1", "--format=%B%x00%T", "main").split("\0")
    assert f"{RENDER_TRAILER}: " in first[0]
    assert f"{TREE_TRAILER}: {first[1].strip()}\n" in first[0]
    template.write("docs/new.md", "New.\n")

    render_commit = str(update(project, template).render_commit)

    message = run_git(project, "log", "-1", "--format=%B", render_commit)
    tree = run_git(project, "rev-parse", f"{render_commit}^{{tree}}").strip()
    assert f"{TREE_TRAILER}: {tree}\n" in message


def test_clean_merge_keeps_user_edits_in_other_lines(
    project: Path, template: FixtureTemplate
) -> None:
    edit(project / "README.md", "Line five.", "Line five, mine.")
    mine = commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, from the template.")

    result = update(project, template)

    assert result.status == "updated"
    assert result.changes.modified == ["README.md"]
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, from the template."
    ).replace("Line five.", "Line five, mine.")
    assert status(project) == ""
    assert parents(project) == [mine, result.render_commit]
    assert parents(project, str(result.render_commit)) == [result.base]
    branch = run_git(project, "rev-parse", TEMPLATE_BRANCH).strip()
    assert branch == result.render_commit
    message = run_git(project, "log", "-1", "--format=%B", branch)
    assert f"{RENDER_TRAILER}: " in message
    assert find_base(project) == result.render_commit


def test_same_line_conflict_leaves_markers_and_merge_in_progress(
    project: Path, template: FixtureTemplate
) -> None:
    edit(project / "README.md", "Line two.", "Line two, mine.")
    mine = commit_all(project)
    template.replace("README.md.jinja", "Line two.", "Line two, template.")

    with pytest.raises(MergeConflictError) as caught:
        update(project, template)

    assert caught.value.files == ["README.md"]
    assert caught.value.exit_code == 4
    render_commit = run_git(project, "rev-parse", TEMPLATE_BRANCH).strip()
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line two.\n",
        f"<<<<<<< HEAD\nLine two, mine.\n=======\nLine two, template.\n>>>>>>> {render_commit}\n",
    )
    assert (project / ".git" / "MERGE_HEAD").read_text().strip() == render_commit
    assert status(project) == "UU README.md\n"

    run_git(project, "merge", "--abort")

    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line two.", "Line two, mine."
    )
    assert status(project) == ""
    assert run_git(project, "rev-parse", "HEAD").strip() == mine


def test_base_is_found_from_history_after_an_aborted_merge(
    project: Path, template: FixtureTemplate
) -> None:
    first_base = find_base(project)
    edit(project / "README.md", "Line two.", "Line two, mine.")
    commit_all(project)
    template.replace("README.md.jinja", "Line two.", "Line two, template.")
    with pytest.raises(MergeConflictError):
        update(project, template)
    run_git(project, "merge", "--abort")
    assert find_base(project) == first_base  # the branch is ahead; history is not
    edit(project / "README.md", "Line two, mine.", "Line two.")
    commit_all(project, "give up my edit")

    result = update(project, template)

    assert result.status == "updated"
    assert result.base == first_base
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line two.", "Line two, template."
    )


def test_fresh_clone_without_the_template_branch_updates(
    project: Path, template: FixtureTemplate, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(project), str(clone))
    assert run_git(clone, "branch", "--list", TEMPLATE_BRANCH) == ""
    template.write("docs/new.md", "New page.\n")

    result = update(clone, template)

    assert result.changes.added == ["docs/new.md"]
    assert (clone / "docs" / "new.md").read_text() == "New page.\n"
    assert run_git(clone, "rev-parse", TEMPLATE_BRANCH).strip() == result.render_commit


def test_user_deleted_file_the_template_did_not_change_stays_deleted(
    project: Path, template: FixtureTemplate
) -> None:
    run_git(project, "rm", "-q", "notes.txt")
    commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, new.")

    update(project, template)

    assert not (project / "notes.txt").exists()
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, new."
    )


def test_user_deleted_file_the_template_changed_is_a_conflict(
    project: Path, template: FixtureTemplate
) -> None:
    run_git(project, "rm", "-q", "notes.txt")
    commit_all(project)
    template.write("notes.txt", "Notes, revised by the template.\n")

    with pytest.raises(MergeConflictError) as caught:
        update(project, template)

    assert caught.value.files == ["notes.txt"]
    assert status(project) == "DU notes.txt\n"  # deleted by us, updated by them: unresolved
    assert (project / "notes.txt").read_text() == "Notes, revised by the template.\n"
    run_git(project, "merge", "--abort")
    assert not (project / "notes.txt").exists()


def test_file_added_by_the_template_arrives(project: Path, template: FixtureTemplate) -> None:
    template.write("docs/{{ package_name }}.md.jinja", "Docs of {{ project_name }}.\n")

    result = update(project, template)

    assert result.changes.added == ["docs/demo.md"]
    assert (project / "docs" / "demo.md").read_text() == "Docs of demo.\n"


def test_file_removed_by_the_template_goes_when_unedited(
    project: Path, template: FixtureTemplate
) -> None:
    template.remove("notes.txt")

    result = update(project, template)

    assert result.changes.removed == ["notes.txt"]
    assert not (project / "notes.txt").exists()
    assert status(project) == ""


def test_file_removed_by_the_template_but_edited_is_a_conflict(
    project: Path, template: FixtureTemplate
) -> None:
    (project / "notes.txt").write_text(NOTES + "My own note.\n")
    commit_all(project)
    template.remove("notes.txt")

    with pytest.raises(MergeConflictError) as caught:
        update(project, template)

    assert caught.value.files == ["notes.txt"]
    assert status(project) == "UD notes.txt\n"  # updated by us, deleted by them
    assert (project / "notes.txt").read_text() == NOTES + "My own note.\n"


def test_user_added_files_are_untouched(project: Path, template: FixtureTemplate) -> None:
    (project / "mine").mkdir()
    (project / "mine" / "notes.md").write_text("Mine.\n")
    (project / "mine" / "blob.bin").write_bytes(b"\0\1\2mine")
    commit_all(project)
    template.replace("README.md.jinja", "Line three.", "Line three, new.")
    template.write("docs/other.md", "Other.\n")

    update(project, template)

    assert (project / "mine" / "notes.md").read_text() == "Mine.\n"
    assert (project / "mine" / "blob.bin").read_bytes() == b"\0\1\2mine"
    tracked = run_git(project, "ls-files", "mine").split()
    assert tracked == ["mine/blob.bin", "mine/notes.md"]


def test_binary_file_changed_by_the_template_is_replaced(
    project: Path, template: FixtureTemplate
) -> None:
    new_logo = bytes(reversed(LOGO))
    template.write("assets/logo.bin", new_logo)

    result = update(project, template)

    assert result.changes.modified == ["assets/logo.bin"]
    assert (project / "assets" / "logo.bin").read_bytes() == new_logo


def test_binary_file_changed_on_both_sides_is_a_conflict(
    project: Path, template: FixtureTemplate
) -> None:
    mine = b"\0my logo\0" * 10
    (project / "assets" / "logo.bin").write_bytes(mine)
    commit_all(project)
    template.write("assets/logo.bin", bytes(reversed(LOGO)))

    with pytest.raises(MergeConflictError) as caught:
        update(project, template)

    assert caught.value.files == ["assets/logo.bin"]
    assert status(project) == "UU assets/logo.bin\n"
    assert (project / "assets" / "logo.bin").read_bytes() == mine


def test_toggling_a_component_off_and_on(project: Path, template: FixtureTemplate) -> None:
    tune = project / "src" / "demo" / "tune.py"
    assert tune.read_text() == '"""Tuning with optuna."""\n'
    edit(project / "README.md", "Line four.", "Line four, mine.")
    commit_all(project)

    off = update(project, template, "tuning=none")

    assert off.changes.removed == ["src/demo/tune.py"]
    assert off.changes.modified == [".copier-answers.yml"]
    assert not tune.exists()
    assert "tuning: none\n" in (project / ".copier-answers.yml").read_text()
    assert update(project, template).status == "up-to-date"  # the new answer is recorded

    on = update(project, template, "tuning=optuna")

    assert on.changes.added == ["src/demo/tune.py"]
    assert tune.read_text() == '"""Tuning with optuna."""\n'
    assert "tuning: optuna\n" in (project / ".copier-answers.yml").read_text()
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line four.", "Line four, mine."
    )


def test_toggling_off_a_component_whose_file_the_user_edited_conflicts(
    project: Path, template: FixtureTemplate
) -> None:
    tune = project / "src" / "demo" / "tune.py"
    tune.write_text('"""Tuning with optuna."""\nTRIALS = 50\n')
    commit_all(project)

    with pytest.raises(MergeConflictError) as caught:
        update(project, template, "tuning=none")

    assert caught.value.files == ["src/demo/tune.py"]
    assert tune.read_text() == '"""Tuning with optuna."""\nTRIALS = 50\n'


def test_a_setting_override_is_merged_and_recorded(
    project: Path, template: FixtureTemplate
) -> None:
    result = update(project, template, "serving_port=8123")

    assert sorted(result.changes.modified) == [".copier-answers.yml", "settings.txt"]
    assert (project / "settings.txt").read_text() == "serving_port = 8123\nmlflow_port = 5000\n"
    assert "serving_port: 8123\n" in (project / ".copier-answers.yml").read_text()


def test_profile_switch_keeps_the_project_name(project: Path, template: FixtureTemplate) -> None:
    update(project, template, "tuning=none", "serving_port=8123")

    result = update_project(project, profile="startup", template=template.root)

    assert sorted(result.changes.modified) == [".copier-answers.yml", "settings.txt"]
    assert result.changes.added == ["src/demo/tune.py"]
    answers = (project / ".copier-answers.yml").read_text()
    assert "project_name: demo\n" in answers
    assert "serving_port: 8000\n" in answers


def test_second_update_is_a_no_op(project: Path, template: FixtureTemplate) -> None:
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    update(project, template)
    head = run_git(project, "rev-parse", "HEAD")
    branch = run_git(project, "rev-parse", TEMPLATE_BRANCH)

    result = update(project, template)

    assert result.status == "up-to-date"
    assert result.changes.files == []
    assert result.render_commit is None
    assert run_git(project, "rev-parse", "HEAD") == head
    assert run_git(project, "rev-parse", TEMPLATE_BRANCH) == branch


def test_update_across_two_template_versions_in_one_step(
    project: Path, template: FixtureTemplate
) -> None:
    edit(project / "README.md", "Line five.", "Line five, mine.")
    commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, v2.")
    template.write("docs/v2.md", "Added in v2.\n")
    template.replace("README.md.jinja", "Line three.", "Line three, v3.")
    template.remove("notes.txt")

    result = update(project, template)

    assert (result.changes.added, result.changes.removed) == (["docs/v2.md"], ["notes.txt"])
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, v2."
    ).replace("Line three.", "Line three, v3.").replace("Line five.", "Line five, mine.")
    assert (project / "docs" / "v2.md").read_text() == "Added in v2.\n"
    assert not (project / "notes.txt").exists()
    assert len(parents(project)) == 2


def test_content_change_with_unchanged_version_string_is_applied(
    project: Path, template: FixtureTemplate
) -> None:
    answers_before = (project / ".copier-answers.yml").read_text()
    template.replace("notes.txt", "Notes", "Better notes")

    result = update(project, template)

    assert result.status == "updated"
    assert result.changes.modified == ["notes.txt"]
    assert (project / "notes.txt").read_text() == "Better notes shipped by the template.\n"
    assert (project / ".copier-answers.yml").read_text() == answers_before


def test_new_version_string_without_content_change_is_a_no_op(
    project: Path, template: FixtureTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(update_module, "__version__", "99.0.0")
    monkeypatch.setattr(answers_module, "__version__", "99.0.0")
    head = run_git(project, "rev-parse", "HEAD")

    assert update(project, template).status == "up-to-date"
    assert run_git(project, "rev-parse", "HEAD") == head


def test_new_version_string_is_recorded_with_a_content_change(
    project: Path, template: FixtureTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(update_module, "__version__", "99.0.0")
    monkeypatch.setattr(answers_module, "__version__", "99.0.0")
    template.replace("notes.txt", "Notes", "Better notes")

    result = update(project, template)

    assert sorted(result.changes.modified) == [".copier-answers.yml", "notes.txt"]
    assert "scaffold_version: 99.0.0\n" in (project / ".copier-answers.yml").read_text()
    message = run_git(project, "log", "-1", "--format=%B", str(result.render_commit))
    assert f"{RENDER_TRAILER}: 99.0.0" in message


def test_template_moving_on_disk_changes_nothing(
    project: Path, template: FixtureTemplate, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere" / "template"
    moved.parent.mkdir()
    template.root.rename(moved)

    result = update_project(project, template=moved)

    assert result.status == "up-to-date"


def test_dry_run_reports_and_writes_nothing(project: Path, template: FixtureTemplate) -> None:
    edit(project / "README.md", "Line two.", "Line two, mine.")
    commit_all(project)
    template.replace("README.md.jinja", "Line two.", "Line two, template.")
    template.write("docs/new.md", "New.\n")
    refs = run_git(project, "for-each-ref")
    objects = run_git(project, "count-objects", "-v")

    result = update_project(project, dry_run=True, template=template.root)

    assert result.status == "dry-run"
    assert result.changes.added == ["docs/new.md"]
    assert result.conflicts == ["README.md"]
    assert run_git(project, "for-each-ref") == refs
    assert run_git(project, "count-objects", "-v") == objects
    assert status(project) == ""
    assert not (project / "docs").exists()


def test_linearised_history_does_not_use_the_rebased_render_copy(
    project: Path, template: FixtureTemplate
) -> None:
    first_base = find_base(project)
    edit(project / "README.md", "Line five.", "Line five, mine.")
    mine = commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, v2.")
    render_commit = update(project, template).render_commit
    # What `git pull --rebase` does to the merge: replay the render commit on top of mine.
    run_git(project, "reset", "-q", "--hard", mine)
    run_git(project, "cherry-pick", str(render_commit))
    assert find_base(project) == first_base  # the copy sits on a user commit: not a render
    template.replace("README.md.jinja", "Line three.", "Line three, v3.")

    update(project, template)

    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, v2."
    ).replace("Line three.", "Line three, v3.").replace("Line five.", "Line five, mine.")
