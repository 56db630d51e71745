"""Projects rendered before the catalogue redesign update onto today's layout, edits kept.

The older template is taken from this repository's history (``templates/`` at
``BEFORE_CATALOGUE``, the last commit before component folders, manifests and
contributions, and before the package's pipeline/platform/verify layout), rendered for
every built-in profile, edited as a user would (a line added to ``src/<package>/train.py``,
today's ``pipeline/train.py``), committed, then updated with today's template (the older
template's recorded ``serving``, where the app runs, is read as today's ``serving`` +
``serving_platform``): every edit survives, the project becomes what a fresh render of
today's template plus the edits is, and a second update has nothing to do.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import Stack, builtin_profiles, load_stack
from mlops_scaffold.update import update_project

from .helpers import commit_all, run_git, status

REPO = Path(__file__).resolve().parents[2]
BEFORE_CATALOGUE = "b6d01ff"  # main before issue 13 (catalogue, component folders)


@pytest.fixture(scope="module")
def older_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``templates/`` as it was at ``BEFORE_CATALOGUE``, from git history."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", BEFORE_CATALOGUE, "templates"],
        cwd=REPO, capture_output=True, check=False,
    )
    if archive.returncode != 0:  # a shallow clone lacks it; a full clone always has it
        pytest.skip(f"{BEFORE_CATALOGUE} is not in this clone's history: "
                    f"{archive.stderr.decode(errors='replace').strip()[:120]}")
    root = tmp_path_factory.mktemp("older")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="tar")
    return root / "templates"


#: The line a user adds to the older render's ``train.py`` (moved to ``pipeline/`` since).
OUR_LINE = "# Our note: retrained weekly.\n"

#: The profiles the older template rendered (research came later).
OLDER_PROFILES = [name for name in builtin_profiles() if name != "research"]

#: How the older template spelled where the app runs: one ``serving`` slot.
OLDER_SERVING = {"kserve": "kserve", "seldon": "seldon", "deployment": "fastapi-deployment"}


def older_spelling(stack: Stack) -> Stack:
    """``stack`` as the older template knew it (``serving: kserve``, no serving_platform).

    Not validated: today's catalogue refuses the old values. The older template records
    only its own questions, so the project's answers have no ``serving_platform``.
    """
    serving = OLDER_SERVING.get(stack.slots.serving_platform, stack.slots.serving)
    return stack.model_copy(update={"slots": stack.slots.model_copy(update={"serving": serving})})


def _tree(project: Path) -> dict[str, bytes]:
    files = run_git(project, "ls-files").splitlines()
    return {name: (project / name).read_bytes() for name in files}


@pytest.mark.parametrize("profile", OLDER_PROFILES)
def test_an_older_render_updates_onto_today_and_keeps_every_edit(
    older_template: Path, tmp_path: Path, profile: str
) -> None:
    stack = load_stack(profile=profile)
    project = create_project(older_spelling(stack), tmp_path / "churn", template=older_template)
    recorded = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "serving_platform" not in recorded  # read in today's spelling by update
    readme = (project / "README.md").read_text(encoding="utf-8")
    (project / "README.md").write_text(readme + "\n## Our notes\nKeep this.\n", "utf-8")
    (project / "notes").mkdir()
    (project / "notes" / "ours.md").write_text("Our own file.\n", encoding="utf-8")
    train = project / "src" / "churn" / "train.py"
    train.write_text(train.read_text(encoding="utf-8") + OUR_LINE, encoding="utf-8")
    commit_all(project, "Our edits")

    result = update_project(project)

    assert result.status == "updated"
    assert status(project) == ""
    assert (project / "README.md").read_text(encoding="utf-8").endswith(
        "\n## Our notes\nKeep this.\n"
    )
    assert (project / "notes" / "ours.md").read_text(encoding="utf-8") == "Our own file.\n"
    # the edit followed the module to its new place (git's rename detection)
    assert not train.exists()
    moved = project / "src" / "churn" / "pipeline" / "train.py"
    assert moved.read_text(encoding="utf-8").endswith(OUR_LINE)
    # Today's render plus the edits: every other file is exactly today's.
    fresh = create_project(stack, tmp_path / "fresh" / "churn")
    expected = _tree(fresh)
    got = _tree(project)
    assert got.pop("notes/ours.md") == b"Our own file.\n"
    assert got.pop("README.md").endswith(b"\n## Our notes\nKeep this.\n")
    expected.pop("README.md")
    assert got.pop("src/churn/pipeline/train.py") == (
        expected.pop("src/churn/pipeline/train.py") + OUR_LINE.encode()
    )
    # the answers differ in _src_path only (the older template sat in a temp dir)
    got_answers, expected_answers = (
        [line for line in tree.pop(".copier-answers.yml").splitlines()
         if not line.startswith(b"_src_path:")]
        for tree in (got, expected)
    )
    assert got_answers == expected_answers
    assert got == expected
    assert result.changes.modified, "the older template renders differently from today's"
    assert update_project(project).status == "up-to-date"
