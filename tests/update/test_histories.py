"""``update`` never loses a user byte, whatever the git history and the work tree hold.

Each *shape* starts from a copy of one project generated from template v1, changes its
history or work tree the way a user might, then updates to template v2, which edits the
README, adds ``docs/architecture.md``, removes ``gone.txt``, turns the file ``conf`` into a
directory and the directory ``layout`` into a file. Every shape then checks, for every file
whose bytes the user authored (tracked, untracked or ignored), that its bytes are still in
the work tree: unchanged, merged line by line, or visibly in a conflict (markers, the
"ours" stage, a ``path~side`` copy), modes and symlink targets included; a refusal must
leave the work tree, the index, ``HEAD`` and every ref byte-identical. The bytes lost per
shape are printed at the end of the module (``pytest -s``) and must all be 0.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_scaffold.errors import MergeConflictError, ProjectError
from mlops_scaffold.gitutil import RENDER_TRAILER, TEMPLATE_BRANCH, git_env
from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from mlops_scaffold.update import update_project

from .helpers import FixtureTemplate, commit_all, run_git

REAL_PYPROJECT = Path(__file__).resolve().parents[2] / "templates/project/pyproject.toml.jinja"
GIT_CONFIG = "[user]\n\tname = Test User\n\temail = test@example.invalid\n"

# ---- the two template versions and the shared project ----------------------------------


@dataclass(frozen=True)
class World:
    """Template v1, template v2, and a pristine project generated from v1 to copy."""

    v1: FixtureTemplate
    v2: FixtureTemplate
    project: Path
    pristine: dict[str, tuple[str, bytes, int]]


def description_line() -> str:
    """The real template's ``description = ...`` line (its escaping is under test)."""
    lines = REAL_PYPROJECT.read_text(encoding="utf-8").splitlines()
    return next(line for line in lines if line.startswith("description = ")) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("histories")
    with pytest.MonkeyPatch.context() as patch:
        config = root / "gitconfig"
        config.write_text(GIT_CONFIG)
        patch.setenv("GIT_CONFIG_GLOBAL", str(config))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        v1 = FixtureTemplate(root / "v1").build()
        v1.write("gone.txt", "Removed by v2.\n")
        v1.write("conf", "key = 1\n")
        v1.write("layout/a.txt", "A.\n")
        v1.write("meta.toml.jinja", '[project]\nname = "{{ project_name }}"\n' + description_line())
        shutil.copytree(v1.root, root / "v2")
        v2 = FixtureTemplate(root / "v2")
        v2.replace("README.md.jinja", "Line one.", "Line one, v2.")
        v2.write("docs/architecture.md", "Architecture, added by v2.\n")
        v2.remove("gone.txt")
        v2.remove("conf")
        v2.write("conf/main.cfg", "key = 2\n")
        v2.remove("layout/a.txt")
        (v2.project / "layout").rmdir()
        v2.write("layout", "layout is a file in v2\n")
        project = create_project(load_stack(profile="startup"), root / "demo", template=v1.root)
        yield World(v1, v2, project, files(project))
    print("\nbytes lost per update-history shape:")
    for name, lost in sorted(LOST.items()):
        print(f"  {name:<48} {lost}")


LOST: dict[str, int] = {}


# ---- snapshots and the byte accounting --------------------------------------------------


def files(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every file under ``root`` but ``.git``: kind (file/link), bytes or target, exec bit."""
    found: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = ("link", os.readlink(path).encode(), 0)
            elif name != ".git":
                mode = path.lstat().st_mode
                found[relative] = ("file", path.read_bytes(), int(bool(mode & stat.S_IXUSR)))
    return found


def repo_state(project: Path) -> tuple[object, ...]:
    """Everything a refusal must leave unchanged: files, index (with stat data), HEAD, refs.

    ``status --porcelain=v2 --branch`` names HEAD's commit and branch; ``for-each-ref``
    covers every branch, tag and the stash.
    """
    return (
        files(project),
        run_git(project, "ls-files", "-s", "--debug"),
        run_git(project, "status", "--porcelain=v2", "--branch", "--ignored"),
        run_git(project, "for-each-ref"),
    )


def without_stat_data(state: tuple[object, ...]) -> tuple[object, ...]:
    """The state without the index's stat lines (rewritten files have new mtimes)."""
    index = "".join(line for line in str(state[1]).splitlines(True) if not line[:1].isspace())
    return (state[0], index, *state[2:])


def without_template_branch(state: tuple[object, ...]) -> tuple[object, ...]:
    """The state without the template branch's line (a conflicted update moves it)."""
    refs = "".join(
        line for line in str(state[3]).splitlines(True) if not line.endswith(TEMPLATE_BRANCH + "\n")
    )
    return (*state[:3], refs, *state[4:])


def user_files(world: World, project: Path) -> dict[str, tuple[str, bytes, int]]:
    """Files whose bytes (or mode, or target) the user authored: not as v1 rendered them."""
    return {
        path: entry for path, entry in files(project).items() if world.pristine.get(path) != entry
    }


def stage_ours(project: Path, path: str) -> bytes | None:
    result = subprocess.run(
        ["git", "show", f":2:{path}"], cwd=project, env=git_env(), capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def lost_bytes(world: World, project: Path, mine: dict[str, tuple[str, bytes, int]]) -> int:
    """Bytes of the user's files no longer in the work tree, merged, or in a conflict."""
    after = files(project)
    lost = 0
    for path, (kind, content, executable) in mine.items():
        now = after.get(path)
        if now == (kind, content, executable):
            continue
        if kind == "link" or (now is None and not content):
            lost += len(content) or 1
            continue
        candidates = [now[1]] if now is not None and now[0] == "file" else []
        candidates.append(stage_ours(project, path) or b"")
        candidates += [entry[1] for name, entry in after.items() if name.startswith(f"{path}~")]
        if content in candidates:
            if now is not None and now[1] == content and now[2] != executable:
                lost += 1  # the exec bit
            continue
        if path in world.pristine:
            pristine = set(world.pristine[path][1].splitlines(keepends=True))
        else:  # a new or renamed file: the template's lines (a rename's) are not the user's
            pristine = {
                line for _, body, _ in world.pristine.values() for line in body.splitlines(True)
            }
        present = {line for candidate in candidates for line in candidate.splitlines(True)}
        lost += sum(
            len(line)
            for line in content.splitlines(keepends=True)
            if line not in pristine and line not in present
        )
    return lost


# ---- running an update and checking its outcome -----------------------------------------


@dataclass
class Shape:
    """A history or work-tree shape, the outcome expected, and what the user authored."""

    name: str
    prepare: Callable[[World, Path, Path], Path | None]
    expect: str  # updated | conflict | adopted | up-to-date | refused:<regex>
    template: str = "v2"
    adopt: bool = False
    check: Callable[[Path], None] | None = None


def copy_project(world: World, tmp_path: Path) -> Path:
    project = tmp_path / "demo"
    shutil.copytree(world.project, project, symlinks=True)
    return project


def run_shape(world: World, shape: Shape, tmp_path: Path) -> None:
    project = copy_project(world, tmp_path)
    target = shape.prepare(world, project, tmp_path) or project
    mine = user_files(world, target)
    before = repo_state(target)
    template = (world.v2 if shape.template == "v2" else world.v1).root
    outcome = "updated"
    try:
        result = update_project(target, adopt=shape.adopt, template=template)
        outcome = result.status
    except MergeConflictError:
        outcome = "conflict"
    except ProjectError as exc:
        outcome = f"refused: {exc.message}"
    lost = lost_bytes(world, target, mine)
    LOST[shape.name] = lost
    expected = shape.expect.split(":", 1)
    assert outcome.split(":", 1)[0] == expected[0], outcome
    if expected[0] == "refused":
        assert re.search(expected[1], outcome), outcome
        assert len(outcome.splitlines()) == 1
        assert repo_state(target) == before
    elif expected[0] in ("updated", "adopted", "up-to-date"):
        assert run_git(target, "status", "--porcelain") == ""
    else:
        run_git(target, "merge", "--abort")
        after = without_template_branch(without_stat_data(repo_state(target)))
        before_plain = without_template_branch(without_stat_data(before))
        for index, (was, now) in enumerate(zip(before_plain, after, strict=True)):
            if was != now and isinstance(was, dict):
                changed = {k for k in set(was) | set(now) if was.get(k) != now.get(k)}
                raise AssertionError(f"merge --abort left files changed: {sorted(changed)}")
            assert was == now, index
    assert lost == 0
    if shape.check is not None:
        shape.check(target)


def quoted_description_parses(project: Path) -> None:
    rendered = run_git(project, "show", f"{TEMPLATE_BRANCH}:meta.toml")
    meta = tomllib.loads(rendered)
    assert meta["project"]["description"] == 'The "best" model \\ ünïcode ✓ # not a comment'


def deletions_kept(project: Path) -> None:
    assert not (project / "notes.txt").exists()
    assert not (project / "gone.txt").exists()
    assert (project / "docs" / "architecture.md").is_file()


def template_changes_arrived(project: Path) -> None:
    assert "Line one, v2." in (project / "README.md").read_text()
    assert (project / "docs" / "architecture.md").is_file()
    assert (project / "conf" / "main.cfg").is_file() and (project / "layout").is_file()
    assert not (project / "gone.txt").exists()


# ---- shape builders ---------------------------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def my_edits(project: Path) -> None:
    """The usual user work: an edit the template does not touch, a file of one's own."""
    edit(project / "README.md", "Line five.", "Line five, mine.")
    (project / "src" / "demo" / "model.py").write_text('"""My model."""\nWEIGHTS = [1, 2]\n')


def plain(world: World, project: Path, tmp: Path) -> None:
    my_edits(project)
    commit_all(project, "my work")


def amend_after_new(world: World, project: Path, tmp: Path) -> None:
    my_edits(project)
    run_git(project, "add", "-A")
    run_git(project, "commit", "-q", "--amend", "--no-edit")


def squash_into_root(world: World, project: Path, tmp: Path) -> None:
    my_edits(project)
    commit_all(project, "one")
    (project / "notes.txt").write_text("Notes, all mine.\n")
    commit_all(project, "two")
    root = run_git(project, "rev-list", "--max-parents=0", "HEAD").strip()
    run_git(project, "reset", "-q", "--soft", root)
    run_git(project, "commit", "-q", "--amend", "--no-edit")


def rebase_root(world: World, project: Path, tmp: Path) -> None:
    my_edits(project)
    commit_all(project, "one")
    (project / "mine.txt").write_text("Mine.\n")
    commit_all(project, "two")
    run_git(project, "rebase", "-q", "--force-rebase", "--root")


def rebase_onto_updated(world: World, project: Path, tmp: Path) -> None:
    """A feature branch made before an update, rebased onto the updated main."""
    run_git(project, "switch", "-q", "-c", "feature")
    my_edits(project)
    commit_all(project, "feature work")
    run_git(project, "switch", "-q", "main")
    update_project(project, template=world.v2.root)
    run_git(project, "switch", "-q", "feature")
    run_git(project, "rebase", "-q", "main")


def cherry_picked_render(world: World, project: Path, tmp: Path) -> None:
    """What `git pull --rebase` does to an update merge: the render replayed on top."""
    my_edits(project)
    mine = commit_all(project, "my work")
    render_commit = update_project(project, template=world.v2.root).render_commit
    run_git(project, "reset", "-q", "--hard", mine)
    run_git(project, "cherry-pick", str(render_commit))


def shallow_clone(world: World, project: Path, tmp: Path) -> Path:
    plain(world, project, tmp)
    clone = tmp / "shallow"
    run_git(tmp, "clone", "-q", "--depth", "1", f"file://{project}", str(clone))
    return clone


def fresh_clone(world: World, project: Path, tmp: Path) -> Path:
    plain(world, project, tmp)
    clone = tmp / "clone"
    run_git(tmp, "clone", "-q", "--single-branch", str(project), str(clone))
    return clone


def detached_head(world: World, project: Path, tmp: Path) -> None:
    plain(world, project, tmp)
    run_git(project, "switch", "-q", "--detach", "HEAD")


def other_branch(world: World, project: Path, tmp: Path) -> None:
    run_git(project, "switch", "-q", "-c", "experiment")
    plain(world, project, tmp)


def with_submodule(world: World, project: Path, tmp: Path) -> None:
    library = tmp / "library"
    library.mkdir()
    (library / "lib.py").write_text("VALUE = 1\n")
    run_git(library, "init", "-q", "-b", "main")
    commit_all(library, "lib")
    run_git(
        project,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(library),
        "vendor/lib",
    )
    plain(world, project, tmp)


def with_symlinks(world: World, project: Path, tmp: Path) -> None:
    (project / "latest").symlink_to("README.md")
    (project / "dangling").symlink_to("does/not/exist")
    (project / "docs-link").symlink_to("assets")
    (project / "notes.txt").unlink()
    (project / "notes.txt").symlink_to("README.md")  # a template file made a link
    commit_all(project, "links")


def non_utf8_names(world: World, project: Path, tmp: Path) -> None:
    (project / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name\n")
    (project / "new\nline.txt").write_text("a newline in the name\n")
    commit_all(project, "odd names")


def crlf_files(world: World, project: Path, tmp: Path) -> None:
    (project / "windows.txt").write_bytes(b"one\r\ntwo\r\n")
    settings = project / "settings.txt"
    settings.write_bytes(settings.read_bytes().replace(b"\n", b"\r\n"))
    readme = project / "README.md"
    readme.write_bytes(readme.read_bytes().replace(b"Line five.\n", b"Line five, mine.\r\n"))
    commit_all(project, "crlf")


def whole_file_crlf(world: World, project: Path, tmp: Path) -> None:
    readme = project / "README.md"  # the template changes this file: a conflict
    readme.write_bytes(readme.read_bytes().replace(b"\n", b"\r\n"))
    commit_all(project, "crlf readme")


def binary_files(world: World, project: Path, tmp: Path) -> None:
    (project / "assets" / "logo.bin").write_bytes(b"\0\xffmy logo\0" * 50)
    (project / "weights.bin").write_bytes(bytes(range(255, -1, -1)) * 8)
    commit_all(project, "binaries")


def exec_bits(world: World, project: Path, tmp: Path) -> None:
    (project / "notes.txt").chmod(0o755)
    script = project / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    commit_all(project, "scripts")


def user_renames(world: World, project: Path, tmp: Path) -> None:
    run_git(project, "mv", "notes.txt", "NOTES.md")
    (project / "config").mkdir()
    run_git(project, "mv", "settings.txt", "config/settings.txt")
    commit_all(project, "renames")


def user_renames_changed_file(world: World, project: Path, tmp: Path) -> None:
    edit(project / "README.md", "Line five.", "Line five, mine.")
    commit_all(project)
    run_git(project, "mv", "README.md", "README.markdown")
    commit_all(project, "rename the readme the template changes")


def user_file_to_dir(world: World, project: Path, tmp: Path) -> None:
    (project / "settings.txt").unlink()
    (project / "settings.txt").mkdir()
    (project / "settings.txt" / "local.txt").write_text("my settings\n")
    commit_all(project, "settings as a directory")


def user_dir_to_file(world: World, project: Path, tmp: Path) -> None:
    shutil.rmtree(project / "assets")
    (project / "assets").write_text("assets are a file now\n")
    commit_all(project, "assets as a file")


def edit_file_template_makes_dir(world: World, project: Path, tmp: Path) -> None:
    (project / "conf").write_text("key = 1\nmine = yes\n")
    commit_all(project, "my conf")


def add_to_dir_template_makes_file(world: World, project: Path, tmp: Path) -> None:
    (project / "layout" / "mine.txt").write_text("mine\n")
    commit_all(project, "my layout file")


def ignore(project: Path, *patterns: str) -> None:
    gitignore = project / ".gitignore"
    old = gitignore.read_text() if gitignore.exists() else ""
    gitignore.write_text(old + "".join(f"{pattern}\n" for pattern in patterns))
    commit_all(project, "ignore")


def ignored_under_added_dir(world: World, project: Path, tmp: Path) -> None:
    ignore(project, "docs/*.local")
    (project / "docs").mkdir()
    (project / "docs" / "notes.local").write_text("my local notes\n")


def ignored_parent_of_added_file(world: World, project: Path, tmp: Path) -> None:
    ignore(project, "/docs")
    (project / "docs").write_text("my docs, never committed\n")


def ignored_at_added_path(world: World, project: Path, tmp: Path) -> None:
    ignore(project, "docs/architecture.md")
    (project / "docs").mkdir()
    (project / "docs" / "architecture.md").write_text("my architecture\n")


def ignored_in_dir_template_makes_file(world: World, project: Path, tmp: Path) -> None:
    ignore(project, "*.tmp")
    (project / "layout" / "cache.tmp").write_text("cache I want to keep\n")


def ignored_symlink_parent(world: World, project: Path, tmp: Path) -> None:
    ignore(project, "/docs")
    (project / "docs").symlink_to(tmp)


def tracked_dir_where_template_writes_file(world: World, project: Path, tmp: Path) -> None:
    (project / "docs" / "architecture.md").mkdir(parents=True)
    (project / "docs" / "architecture.md" / "part1.md").write_text("my part one\n")
    commit_all(project, "architecture as a directory")


def answers_with_quotes(world: World, project: Path, tmp: Path) -> None:
    edit(
        project / ".copier-answers.yml",
        "description: ",
        "description: 'The \"best\" model \\ ünïcode ✓ # not a comment' #",
    )
    commit_all(project, "my description")


def answers_with_newline(world: World, project: Path, tmp: Path) -> None:
    edit(project / ".copier-answers.yml", "description: ", 'description: "two\\nlines" #')
    commit_all(project, "bad description")


def answers_invalid_yaml(world: World, project: Path, tmp: Path) -> None:
    (project / ".copier-answers.yml").write_text("tuning: [optuna\n")
    commit_all(project, "broken answers")


def answers_not_utf8(world: World, project: Path, tmp: Path) -> None:
    answers = project / ".copier-answers.yml"
    answers.write_bytes(answers.read_bytes() + b"# caf\xe9\n")
    commit_all(project, "latin-1 answers")


def answers_not_a_mapping(world: World, project: Path, tmp: Path) -> None:
    (project / ".copier-answers.yml").write_text("- just\n- a list\n")
    commit_all(project, "list answers")


def merge_in_progress(world: World, project: Path, tmp: Path) -> None:
    run_git(project, "switch", "-q", "-c", "other")
    (project / "notes.txt").write_text("other side\n")
    commit_all(project, "other")
    run_git(project, "switch", "-q", "main")
    (project / "notes.txt").write_text("main side\n")
    commit_all(project, "main")
    run_git(project, "merge", "-q", "other", check=False)


def with_stash(world: World, project: Path, tmp: Path) -> None:
    plain(world, project, tmp)
    (project / "notes.txt").write_text("stashed work\n")
    (project / "draft.txt").write_text("stashed draft\n")
    run_git(project, "stash", "push", "-q", "--include-untracked")


def linked_worktree(world: World, project: Path, tmp: Path) -> Path:
    plain(world, project, tmp)
    linked = tmp / "linked"
    run_git(project, "worktree", "add", "-q", "-b", "wt", str(linked))
    (linked / "wt-only.txt").write_text("work in the linked tree\n")
    commit_all(linked, "wt work")
    return linked


def user_deleted_files(world: World, project: Path, tmp: Path) -> None:
    run_git(project, "rm", "-q", "notes.txt", "gone.txt")
    commit_all(project, "delete template files")


def edited_file_template_deletes(world: World, project: Path, tmp: Path) -> None:
    (project / "gone.txt").write_text("Removed by v2.\nBut I wrote here.\n")
    commit_all(project, "edit gone.txt")


def same_line_conflict(world: World, project: Path, tmp: Path) -> None:
    edit(project / "README.md", "Line one.", "Line one, mine.")
    commit_all(project, "same line")


def stale_index_lock(world: World, project: Path, tmp: Path) -> None:
    plain(world, project, tmp)
    (project / ".git" / "index.lock").write_text("")


def history_replaced(world: World, project: Path, tmp: Path) -> None:
    run_git(project, "checkout", "-q", "--orphan", "fresh")
    my_edits(project)
    commit_all(project, "start over")
    run_git(project, "branch", "-q", "-D", "main")


def legacy(project: Path) -> None:
    """Make the project what today's release made: the render trailer, no tree trailer."""
    root = run_git(project, "rev-list", "--max-parents=0", "HEAD").strip()
    message = (
        f"Generate project with mlops-scaffold 0.1.0 (profile startup)\n\n{RENDER_TRAILER}: 0.1.0\n"
    )
    legacy_root = run_git(project, "commit-tree", f"{root}^{{tree}}", "-m", message).strip()
    run_git(project, "update-ref", "refs/heads/main", legacy_root)
    run_git(project, "update-ref", f"refs/heads/{TEMPLATE_BRANCH}", legacy_root)


def legacy_plain(world: World, project: Path, tmp: Path) -> None:
    legacy(project)
    plain(world, project, tmp)


def legacy_amended(world: World, project: Path, tmp: Path) -> None:
    legacy(project)
    amend_after_new(world, project, tmp)


def legacy_clone_with_branch(world: World, project: Path, tmp: Path) -> Path:
    legacy_plain(world, project, tmp)
    clone = tmp / "clone"
    run_git(tmp, "clone", "-q", str(project), str(clone))  # origin/mlops-scaffold/template
    return clone


def legacy_clone_without_branch(world: World, project: Path, tmp: Path) -> Path:
    legacy_plain(world, project, tmp)
    clone = tmp / "clone"
    run_git(tmp, "clone", "-q", "--single-branch", str(project), str(clone))
    return clone


def updated_twice(world: World, project: Path, tmp: Path) -> None:
    plain(world, project, tmp)
    update_project(project, template=world.v2.root)


def no_git_then_committed(world: World, project: Path, tmp: Path) -> None:
    shutil.rmtree(project / ".git")
    run_git(project, "init", "-q", "-b", "main")
    my_edits(project)
    commit_all(project, "Adopt generated project")


REWRITTEN = r"render commit \w+ was rewritten .* update --adopt"
UNTRACKED = r"would overwrite or delete files git does not track: "
SHAPES = [
    Shape("plain user commits", plain, "updated", check=template_changes_arrived),
    Shape("amend right after new", amend_after_new, f"refused:{REWRITTEN}"),
    Shape("amend, template unchanged", amend_after_new, f"refused:{REWRITTEN}", "v1"),
    Shape("amend, then --adopt", amend_after_new, "conflict", adopt=True),
    Shape("squash into the root commit", squash_into_root, f"refused:{REWRITTEN}"),
    Shape("squash into root, then --adopt", squash_into_root, "conflict", adopt=True),
    Shape("rebase --root of user commits", rebase_root, "updated"),
    Shape("feature branch rebased onto update", rebase_onto_updated, "up-to-date"),
    Shape("render cherry-picked (pull --rebase)", cherry_picked_render, "updated"),
    Shape("shallow clone", shallow_clone, "refused:shallow clone .*git fetch --unshallow"),
    Shape("single-branch clone", fresh_clone, "updated"),
    Shape("detached HEAD", detached_head, "refused:HEAD is detached .* git switch"),
    Shape("branch other than main", other_branch, "updated"),
    Shape("submodule", with_submodule, "updated"),
    Shape("symlinks (file, dangling, dir)", with_symlinks, "updated"),
    Shape("non-UTF-8 and newline file names", non_utf8_names, "updated"),
    Shape("CRLF lines and files", crlf_files, "updated"),
    Shape("CRLF whole file the template edits", whole_file_crlf, "conflict"),
    Shape("binary files", binary_files, "updated"),
    Shape("exec bits", exec_bits, "updated"),
    Shape("user renames files", user_renames, "updated"),
    Shape("user renames a file the template edits", user_renames_changed_file, "updated"),
    Shape("user file -> directory", user_file_to_dir, "updated"),
    Shape("user directory -> file", user_dir_to_file, "updated"),
    Shape("template file -> dir, user edited file", edit_file_template_makes_dir, "conflict"),
    Shape("template dir -> file, user added in dir", add_to_dir_template_makes_file, "conflict"),
    Shape("ignored path under an added directory", ignored_under_added_dir, "updated"),
    Shape(
        "ignored parent of an added file",
        ignored_parent_of_added_file,
        f"refused:{UNTRACKED}docs \\(",
    ),
    Shape("ignored file at an added path", ignored_at_added_path, f"refused:{UNTRACKED}docs/arch"),
    Shape(
        "ignored file in dir the template makes a file",
        ignored_in_dir_template_makes_file,
        f"refused:{UNTRACKED}layout/ \\(",
    ),
    Shape(
        "ignored symlink parent of an added file",
        ignored_symlink_parent,
        f"refused:{UNTRACKED}docs \\(",
    ),
    Shape(
        "tracked dir where the template adds a file",
        tracked_dir_where_template_writes_file,
        "conflict",
    ),
    Shape(
        "answers: quotes, backslash, unicode",
        answers_with_quotes,
        "conflict",  # the hand-edited line differs from the render's quoting of it
        check=quoted_description_parses,
    ),
    Shape(
        "answers: newline in description",
        answers_with_newline,
        "refused:copier-answers.yml: description must be text on one line",
    ),
    Shape(
        "answers: invalid YAML",
        answers_invalid_yaml,
        "refused:copier-answers.yml: not valid YAML at line",
    ),
    Shape("answers: not UTF-8", answers_not_utf8, "refused:copier-answers.yml: not UTF-8 text"),
    Shape(
        "answers: not a mapping",
        answers_not_a_mapping,
        "refused:copier-answers.yml: must be a YAML mapping",
    ),
    Shape("merge in progress", merge_in_progress, "refused:a merge is in progress"),
    Shape("stash entries", with_stash, "updated"),
    Shape("linked worktree", linked_worktree, "updated"),
    Shape("user deleted template files", user_deleted_files, "updated", check=deletions_kept),
    Shape("user edited a file the template deletes", edited_file_template_deletes, "conflict"),
    Shape("same line edited on both sides", same_line_conflict, "conflict"),
    Shape("stale index.lock", stale_index_lock, "refused:index.lock exists"),
    Shape(
        "history replaced (orphan branch)", history_replaced, "refused:no render commit .* --adopt"
    ),
    Shape("--no-git project committed by hand", no_git_then_committed, "refused:no render commit"),
    Shape("--no-git project, --adopt", no_git_then_committed, "conflict", adopt=True),
    Shape("second update after an update", updated_twice, "up-to-date"),
    Shape("legacy project (today's release)", legacy_plain, "updated"),
    Shape("legacy project amended", legacy_amended, f"refused:{REWRITTEN}"),
    Shape("legacy clone (remote template branch)", legacy_clone_with_branch, "updated"),
    Shape(
        "legacy single-branch clone",
        legacy_clone_without_branch,
        "refused:git fetch origin mlops-scaffold/template",
    ),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[shape.name for shape in SHAPES])
def test_no_user_byte_is_lost(world: World, shape: Shape, tmp_path: Path) -> None:
    run_shape(world, shape, tmp_path)
