"""``diff_project`` and the ``update``/``diff`` commands (through Typer's CliRunner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_scaffold import render as render_module
from mlops_scaffold.cli import app
from mlops_scaffold.update import diff_project

from .helpers import FixtureTemplate, commit_all, rendered_readme, run_git, status


@pytest.fixture
def installed(template: FixtureTemplate, monkeypatch: pytest.MonkeyPatch) -> FixtureTemplate:
    """Make the fixture template the one the CLI renders (the "installed" template)."""
    monkeypatch.setattr(render_module, "template_dir", lambda: template.root)
    return template


def change_both_sides(project: Path, template: FixtureTemplate) -> None:
    """User: edits README line two and notes.txt. Template: README two + four, adds, removes."""
    (project / "README.md").write_text(rendered_readme().replace("Line two.", "Two, mine."))
    (project / "notes.txt").write_text("My notes.\n")
    commit_all(project)
    template.replace("README.md.jinja", "Line two.", "Two, template.")
    template.replace("README.md.jinja", "Line four.", "Four, template.")
    template.write("docs/new.md", "New.\n")
    template.remove("notes.txt")
    template.write("assets/logo.bin", b"\0new logo")


def test_diff_reports_changes_user_changes_and_conflicts(
    project: Path, template: FixtureTemplate
) -> None:
    change_both_sides(project, template)
    refs = run_git(project, "for-each-ref")
    objects = run_git(project, "count-objects", "-v")

    result = diff_project(project, template=template.root)

    assert result.behind is True
    assert result.base == run_git(project, "rev-parse", "HEAD~1").strip()
    assert result.changes.added == ["docs/new.md"]
    assert result.changes.removed == ["notes.txt"]
    assert result.changes.modified == ["README.md", "assets/logo.bin"]
    assert result.user_changed == ["README.md", "notes.txt"]
    assert result.conflicts == ["README.md", "notes.txt"]
    assert run_git(project, "for-each-ref") == refs
    assert run_git(project, "count-objects", "-v") == objects
    assert status(project) == ""


def test_diff_of_an_up_to_date_project(project: Path, template: FixtureTemplate) -> None:
    result = diff_project(project, template=template.root)

    assert result.behind is False
    assert result.changes.files == [] and result.conflicts == []


def test_diff_with_an_override_shows_the_component_change(
    project: Path, template: FixtureTemplate
) -> None:
    result = diff_project(project, ["tuning=none"], template=template.root)

    assert result.changes.removed == ["src/demo/tune.py"]
    assert result.changes.modified == [".copier-answers.yml"]
    assert result.conflicts == []


def test_diff_works_on_a_dirty_tree_against_head(project: Path, template: FixtureTemplate) -> None:
    (project / "scratch.txt").write_text("draft\n")
    template.write("docs/new.md", "New.\n")

    assert diff_project(project, template=template.root).changes.added == ["docs/new.md"]
    assert (project / "scratch.txt").read_text() == "draft\n"


def test_cli_diff_exit_code(runner: CliRunner, project: Path, installed: FixtureTemplate) -> None:
    current = runner.invoke(app, ["diff", str(project), "--exit-code"])
    assert current.exit_code == 0, current.output
    assert "up to date" in current.stdout

    change_both_sides(project, installed)
    plain = runner.invoke(app, ["diff", str(project)])
    behind = runner.invoke(app, ["diff", str(project), "--exit-code"])

    assert plain.exit_code == 0, plain.output
    assert behind.exit_code == 1
    assert behind.stdout == plain.stdout
    for line in ("docs/new.md", "notes.txt", "README.md", "assets/logo.bin"):
        assert line in plain.stdout
    assert "4 file(s) behind" in plain.stdout
    assert "2 would conflict" in plain.stdout


def test_cli_update_applies_and_reports(
    runner: CliRunner, project: Path, installed: FixtureTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed.write("docs/new.md", "New.\n")
    monkeypatch.chdir(project)

    result = runner.invoke(app, ["update"])

    assert result.exit_code == 0, result.output
    assert "Updated" in result.stdout and "added    docs/new.md" in result.stdout
    assert (project / "docs" / "new.md").read_text() == "New.\n"
    again = runner.invoke(app, ["update"])
    assert again.exit_code == 0
    assert "already up to date" in again.stdout


def test_cli_update_dry_run(runner: CliRunner, project: Path, installed: FixtureTemplate) -> None:
    change_both_sides(project, installed)

    result = runner.invoke(app, ["update", str(project), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "nothing written" in result.stdout
    assert "would conflict: README.md" in result.stdout
    assert not (project / "docs").exists()


def test_cli_update_conflict_exits_4_listing_files(
    runner: CliRunner, project: Path, installed: FixtureTemplate
) -> None:
    change_both_sides(project, installed)

    result = runner.invoke(app, ["update", str(project)])

    assert result.exit_code == 4
    assert result.stderr.startswith("error: update of ")
    assert "  conflict: README.md\n  conflict: notes.txt\n" in result.stderr
    assert "git merge --abort" in result.stderr
    assert (project / ".git" / "MERGE_HEAD").is_file()
    assert (project / "docs" / "new.md").read_text() == "New.\n"  # the clean parts are staged


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["update", "{tmp}"], "not a generated project"),
        (["diff", "{tmp}"], "not a generated project"),
        (["update", "{project}", "--set", "tuning=bogus"], "slot 'tuning' allows optuna"),
        (["update", "{project}", "--profile", "nope"], "unknown profile 'nope'"),
    ],
)
def test_cli_user_errors_are_one_line(
    runner: CliRunner, tmp_path: Path, project: Path, args: list[str], message: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{project}", str(project)) for a in args]

    result = runner.invoke(app, argv)

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_dirty_tree_is_refused(runner: CliRunner, project: Path) -> None:
    (project / "README.md").write_text("unsaved\n")

    result = runner.invoke(app, ["update", str(project)])

    assert result.exit_code == 1
    assert "uncommitted changes" in result.stderr
    assert (project / "README.md").read_text() == "unsaved\n"


def adoptable(project: Path) -> None:
    """Make the project's history one without a render commit (as if committed by hand)."""
    run_git(project, "checkout", "-q", "--orphan", "mine")
    commit_all(project, "Adopt generated project")


def test_cli_update_without_a_trusted_base_needs_adopt(
    runner: CliRunner, project: Path, installed: FixtureTemplate
) -> None:
    adoptable(project)
    installed.write("docs/new.md", "New.\n")
    head = run_git(project, "rev-parse", "HEAD")

    refused = runner.invoke(app, ["update", str(project)])
    preview = runner.invoke(app, ["diff", str(project)])

    assert refused.exit_code == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "no render commit" in refused.stderr and "update --adopt" in refused.stderr
    assert run_git(project, "rev-parse", "HEAD") == head
    assert preview.exit_code == 0, preview.output
    assert preview.stderr.startswith("note: ") and "update --adopt" in preview.stderr
    assert "no trusted base: --adopt" in preview.stdout

    adopted = runner.invoke(app, ["update", str(project), "--adopt"])

    assert adopted.exit_code == 0, adopted.output
    assert adopted.stdout.startswith("Adopted ")
    assert (project / "docs" / "new.md").read_text() == "New.\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"tuning: [optuna\n", "not valid YAML at line 2"),
        (b"tuning: caf\xe9\n", "not UTF-8 text (byte 11)"),
        (b"- a\n- list\n", "must be a YAML mapping of answers (key: value), found list"),
        (b"project_name: 'a b'\n", "project_name 'a b' must start with a letter"),
        (b"description: [1, 2]\n", "description must be text on one line"),
    ],
)
def test_cli_bad_answers_file_is_one_line(
    runner: CliRunner, project: Path, content: bytes, message: str
) -> None:
    (project / ".copier-answers.yml").write_bytes(content)
    commit_all(project, "break the answers")

    for command in ("update", "diff"):
        result = runner.invoke(app, [command, str(project)])

        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"error: {project / '.copier-answers.yml'}: ")
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_cli_detached_head_is_refused_but_diff_works(
    runner: CliRunner, project: Path, installed: FixtureTemplate
) -> None:
    installed.write("docs/new.md", "New.\n")
    run_git(project, "switch", "-q", "--detach")

    refused = runner.invoke(app, ["update", str(project)])

    assert refused.exit_code == 1
    assert "HEAD is detached" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert runner.invoke(app, ["diff", str(project), "--exit-code"]).exit_code == 1
    assert not (project / "docs").exists()
