"""Concurrent and interrupted updates: one at a time, and a killed run loses nothing.

The updates run in child processes (``python -c``) so that they can race each other or be
killed with SIGKILL by a git ``reference-transaction`` hook at a chosen ref update.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_scaffold.errors import ProjectError
from mlops_scaffold.gitutil import TEMPLATE_BRANCH
from mlops_scaffold.update import diff_project, update_project

from .helpers import FixtureTemplate, commit_all, rendered_readme, run_git, status

CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    os.environ["UPDATE_TEST_PID"] = str(os.getpid())
    from mlops_scaffold.errors import ScaffoldError
    from mlops_scaffold.update import update_project
    try:
        print(update_project(Path(sys.argv[1]), template=Path(sys.argv[2])).status)
    except ScaffoldError as exc:
        print("error: " + exc.message)
    """
)
# Kills the updating process (and, for the merge, git itself) when the ref named in
# UPDATE_TEST_KILL_AT is about to change; only in the child, which sets UPDATE_TEST_PID.
HOOK = """#!/bin/sh
[ "$1" = prepared ] || exit 0
[ -n "$UPDATE_TEST_PID" ] || exit 0
grep -q " $UPDATE_TEST_KILL_AT\\$" || exit 0
kill -9 "$UPDATE_TEST_PID"
[ -n "$UPDATE_TEST_KILL_GIT" ] && kill -9 "$PPID"
exit 0
"""


def start(project: Path, template: FixtureTemplate, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project), str(template.root)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def my_work(project: Path, template: FixtureTemplate) -> str:
    (project / "README.md").write_text(rendered_readme().replace("Line five.", "Mine."))
    (project / "mine.txt").write_text("my file\n")
    head = commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    template.write("docs/new.md", "New.\n")
    return head


def merged_readme() -> str:
    return rendered_readme().replace("Line one.", "Line one, new.").replace("Line five.", "Mine.")


def test_a_held_lock_refuses_update_and_diff_in_one_line(
    project: Path, template: FixtureTemplate
) -> None:
    head = my_work(project, template)
    handle = os.open(project / ".git", os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        for call in (update_project, diff_project):
            with pytest.raises(ProjectError, match="another `mlops-scaffold update` or `diff`"):
                call(project, template=template.root)
        fcntl.flock(handle, fcntl.LOCK_SH)  # another diff: diffs may run side by side
        assert diff_project(project, template=template.root).behind
        with pytest.raises(ProjectError, match="is running on this repository"):
            update_project(project, template=template.root)
    finally:
        os.close(handle)
    assert run_git(project, "rev-parse", "HEAD").strip() == head
    assert update_project(project, template=template.root).status == "updated"


def test_two_concurrent_updates_merge_once(project: Path, template: FixtureTemplate) -> None:
    head = my_work(project, template)

    children = [start(project, template) for _ in range(2)]
    outputs = sorted(child.communicate(timeout=120)[0].strip() for child in children)

    assert "updated" in outputs, outputs
    other = outputs[0] if outputs[1] == "updated" else outputs[1]
    assert other == "up-to-date" or "another `mlops-scaffold update`" in other, outputs
    merges = run_git(project, "rev-list", "--merges", f"{head}..HEAD").split()
    assert len(merges) == 1
    assert (project / "README.md").read_text() == merged_readme()
    assert (project / "mine.txt").read_text() == "my file\n"
    assert status(project) == ""


@pytest.fixture
def kill_hook(project: Path) -> None:
    hook = project / ".git" / "hooks" / "reference-transaction"
    hook.write_text(HOOK)
    hook.chmod(0o755)


@pytest.mark.usefixtures("kill_hook")
def test_killed_after_the_render_commit_then_rerun(
    project: Path, template: FixtureTemplate
) -> None:
    head = my_work(project, template)

    child = start(project, template, UPDATE_TEST_KILL_AT=f"refs/heads/{TEMPLATE_BRANCH}")
    child.communicate(timeout=120)

    assert child.returncode == -9
    assert run_git(project, "rev-parse", "HEAD").strip() == head
    assert status(project) == ""
    result = update_project(project, template=template.root)
    assert result.status == "updated"
    assert (project / "README.md").read_text() == merged_readme()
    assert (project / "mine.txt").read_text() == "my file\n"


@pytest.mark.usefixtures("kill_hook")
def test_killed_in_the_middle_of_the_merge_then_rerun(
    project: Path, template: FixtureTemplate
) -> None:
    head = my_work(project, template)

    child = start(
        project, template, UPDATE_TEST_KILL_AT="refs/heads/main", UPDATE_TEST_KILL_GIT="1"
    )
    child.communicate(timeout=120)

    assert child.returncode == -9
    assert run_git(project, "rev-parse", "HEAD").strip() == head  # the merge never committed
    # git had written MERGE_HEAD: the rerun says so in one line, and the user aborts it.
    with pytest.raises(ProjectError, match=r"a merge is in progress; .*git merge --abort"):
        update_project(project, template=template.root)
    assert run_git(project, "show", "HEAD:mine.txt") == "my file\n"  # nothing of mine lost
    for lock in (project / ".git").rglob("*.lock"):  # git was killed holding them
        lock.unlink()
    run_git(project, "merge", "--abort")
    assert status(project) == ""

    assert update_project(project, template=template.root).status == "updated"
    assert (project / "README.md").read_text() == merged_readme()
    assert (project / "mine.txt").read_text() == "my file\n"
