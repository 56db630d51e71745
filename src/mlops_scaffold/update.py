"""Update a generated project to the installed template without losing a user's edit.

The mechanism is git's own three-way merge, with the template's renders as one side:

* Every render of the template is kept as a *pristine render* commit: its tree is exactly
  what the template produced, and its message carries the trailer
  ``Mlops-Scaffold-Template-Render: <version>``. ``new`` makes the first one; each update
  adds a child of the previous one on the branch ``mlops-scaffold/template``.
* ``update`` finds the newest render commit in the history of ``HEAD`` (the *base*; found by
  its trailer, not from the branch, which an aborted merge leaves ahead and a fresh clone
  may lack), renders the recorded answers with the installed template into an empty temp
  dir, commits that tree as a child of the base through a temporary index (the user's
  index and work tree are never touched), and ``git merge --no-ff``-s it into the current
  branch. Git applies exactly what the template changed since the base, keeps everything
  the user changed that the template did not, and stops with conflict markers (leaving
  the merge in progress) where both changed the same thing - including modify/delete and
  binary conflicts.
* Whether there is anything to do is decided by content: a render whose tree equals the
  base's tree (apart from the version stamp and the template's path in the answers file)
  is a no-op, whatever the version strings say.
* A project that has no render commit in its history (generated with ``--no-git``, or
  committed by hand) is *adopted*: the current template's render becomes a parentless
  render commit merged with ``--allow-unrelated-histories``. With no common ancestor git
  cannot tell the user's edits from template changes, so every difference between the
  project and the template is shown as a conflict to resolve once; later updates have a
  real base.

``diff_project`` and ``update_project(dry_run=True)`` do the same work with git's objects
written to a temporary object directory, so nothing is written to the project.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import MergeConflictError, ProjectError
from .gitutil import RENDER_TRAILER, TEMPLATE_BRANCH, commit_message, git, git_env
from .project import project_answers
from .render import ANSWERS_FILE, read_answers, render
from .stacks import Stack, load_stack, stack_from_answers

UP_TO_DATE = "up-to-date"
UPDATED = "updated"
ADOPTED = "adopted"
DRY_RUN = "dry-run"

ADOPT_HINT = (
    "git init && git add -A && git commit -m 'Adopt generated project', "
    "then run `mlops-scaffold update` again"
)
# Variables that would point git somewhere else than the project (e.g. inside a git hook).
_REDIRECTING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_OPERATIONS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "BISECT_LOG": "a bisect",
}
_SRC_PATH_LINE = re.compile(r"^_src_path:.*$", re.MULTILINE)
_VERSION_LINE = re.compile(r"^scaffold_version:.*$", re.MULTILINE)


@dataclass(frozen=True)
class Changes:
    """Files the template changed since the base render, as paths relative to the project."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        """Every changed path, sorted."""
        return sorted({*self.added, *self.removed, *self.modified})

    def kind(self, path: str) -> str:
        """Return ``added``, ``removed`` or ``modified`` for a path in :attr:`files`."""
        if path in self.added:
            return "added"
        return "removed" if path in self.removed else "modified"


@dataclass(frozen=True)
class DiffResult:
    """What an update would change in a project; nothing was written to it."""

    project: Path
    version: str
    base: str | None
    behind: bool
    changes: Changes
    user_changed: list[str]
    conflicts: list[str]


@dataclass(frozen=True)
class UpdateResult:
    """Outcome of an update: ``up-to-date``, ``updated``, ``adopted`` or ``dry-run``."""

    project: Path
    status: str
    version: str
    base: str | None
    render_commit: str | None
    merge_commit: str | None
    changes: Changes
    conflicts: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """True when the template had nothing new for the project."""
        return self.status == UP_TO_DATE


@dataclass(frozen=True)
class _Repo:
    """A generated project that is the top level of its own git repository."""

    root: Path
    git_dir: Path
    objects: Path
    env: dict[str, str]

    def run(
        self, *args: str, extra: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run git in the project (or ``cwd``); raise ProjectError on failure."""
        return git(cwd or self.root, *args, env={**self.env, **(extra or {})})

    def probe(
        self, *args: str, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run git in the project and return the result whatever its exit code."""
        return git(self.root, *args, env={**self.env, **(extra or {})}, check=False)

    def out(self, *args: str, extra: dict[str, str] | None = None) -> str:
        """Return the standard output of a git command, stripped."""
        return self.run(*args, extra=extra).stdout.strip()


@dataclass(frozen=True)
class _Render:
    """The installed template's render of the project, committed (not merged yet)."""

    base: str | None
    commit: str
    current: bool
    changes: Changes


# ---- public API ------------------------------------------------------------------


def update_project(
    project_dir: Path,
    overrides: Sequence[str] = (),
    profile: str | None = None,
    dry_run: bool = False,
    *,
    template: Path | None = None,
) -> UpdateResult:
    """Merge what the installed template changed since the project's last render.

    ``overrides`` (``KEY=VALUE``) change recorded answers and ``profile`` switches to a
    built-in profile (keeping ``project_name``); components they add or drop arrive
    through the same merge. Raises :class:`ProjectError` before touching anything when the
    directory is not a clean, generated project at the top of its own git repository, and
    :class:`MergeConflictError` (merge left in progress) when the merge conflicts.
    ``dry_run`` reports what would change and writes nothing.
    """
    repo = _open(project_dir, require_clean=True)
    answers = _answers(repo.root, overrides, profile)
    with _workspace() as workdir:
        extra = _quarantine(repo, workdir) if dry_run else {}
        rendered = _render_and_commit(repo, answers, workdir, extra, template)
        if rendered.current:
            return _result(repo, UP_TO_DATE, rendered, None)
        if dry_run:
            conflicts = _predict_conflicts(repo, rendered, extra)
            return _result(repo, DRY_RUN, rendered, None, conflicts)
        _check_ignored_clashes(repo, rendered.changes)
        repo.run("update-ref", f"refs/heads/{TEMPLATE_BRANCH}", rendered.commit)
        merged = _merge(repo, rendered)
        return _result(repo, ADOPTED if rendered.base is None else UPDATED, rendered, merged)


def diff_project(
    project_dir: Path,
    overrides: Sequence[str] = (),
    profile: str | None = None,
    *,
    template: Path | None = None,
) -> DiffResult:
    """Report what ``update`` would change, comparing against ``HEAD``; writes nothing.

    ``changes`` are the template's changes since the base render, ``user_changed`` those
    of them the user also changed since then, and ``conflicts`` the files a merge would
    actually conflict on (``git merge-tree``). ``behind`` is true when an update would
    change something (always for a project without a render commit to adopt).
    """
    repo = _open(project_dir, require_clean=False)
    answers = _answers(repo.root, overrides, profile)
    with _workspace() as workdir:
        extra = _quarantine(repo, workdir)
        rendered = _render_and_commit(repo, answers, workdir, extra, template)
        if rendered.current:
            return DiffResult(repo.root, __version__, rendered.base, False, Changes(), [], [])
        conflicts = _predict_conflicts(repo, rendered, extra)
        user_changed = _user_changed(repo, rendered)
    return DiffResult(
        repo.root, __version__, rendered.base, True, rendered.changes, user_changed, conflicts
    )


# ---- checks before anything is touched -------------------------------------------


def _open(project_dir: Path, *, require_clean: bool) -> _Repo:
    """Check that ``project_dir`` is a generated project we may work on and open its repo."""
    project = project_dir.expanduser().resolve()
    if not project.is_dir():
        raise ProjectError(f"{project}: not a directory")
    if not (project / ANSWERS_FILE).is_file():
        raise ProjectError(
            f"{project}: not a generated project ({ANSWERS_FILE} is missing); "
            "update works on projects created by `mlops-scaffold new`"
        )
    repo = _repository(project)
    _require_commit(repo)
    if require_clean:
        _require_no_operation(repo)
        _require_clean(repo)
    return repo


def _clean_env() -> dict[str, str]:
    env = git_env()
    for name in _REDIRECTING_VARS:
        env.pop(name, None)
    return env


def _repository(project: Path) -> _Repo:
    env = _clean_env()
    result = git(
        project,
        "rev-parse",
        "--show-toplevel",
        "--absolute-git-dir",
        "--git-common-dir",
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise ProjectError(f"{project}: not a git repository; to adopt it: {ADOPT_HINT}")
    top, git_dir, common = result.stdout.splitlines()[:3]
    if Path(top).resolve() != project:
        raise ProjectError(
            f"{project}: is inside the git repository {top}, not a repository of its own; "
            "update merges into the project's own history: copy the project out and "
            f"adopt it there: {ADOPT_HINT}"
        )
    objects = (project / common).resolve() / "objects"
    return _Repo(project, Path(git_dir), objects, env)


def _require_commit(repo: _Repo) -> None:
    if repo.probe("rev-parse", "--quiet", "--verify", "HEAD^{commit}").returncode != 0:
        raise ProjectError(
            f"{repo.root}: the repository has no commit yet; commit the project first "
            "(git add -A && git commit -m 'Adopt generated project')"
        )


def _require_no_operation(repo: _Repo) -> None:
    for marker, operation in _OPERATIONS.items():
        if (repo.git_dir / marker).exists():
            raise ProjectError(
                f"{repo.root}: {operation} is in progress; finish it (resolve, then "
                "`git commit`) or abort it (e.g. `git merge --abort`) before updating"
            )


def _require_clean(repo: _Repo) -> None:
    status = repo.out("status", "--porcelain", "--untracked-files=normal")
    if status:
        entries = status.splitlines()
        shown = ", ".join(entry.strip() for entry in entries[:3])
        more = f" and {len(entries) - 3} more" if len(entries) > 3 else ""
        raise ProjectError(
            f"{repo.root}: uncommitted changes ({shown}{more}); commit or stash them first "
            "so the update is one merge you can inspect or undo"
        )


# ---- answers -----------------------------------------------------------------------


def _answers(project: Path, overrides: Sequence[str], profile: str | None) -> dict[str, Any]:
    """Every answer to render with: the recorded ones, the stack's, the installed version."""
    recorded = read_answers(project)
    stack = _target_stack(recorded, overrides, profile)
    answers = {key: value for key, value in recorded.items() if not key.startswith("_")}
    answers.update(project_answers(stack, project))
    answers["project_name"] = recorded.get("project_name", project.name)
    answers["scaffold_version"] = __version__
    return answers


def _target_stack(recorded: dict[str, Any], overrides: Sequence[str], profile: str | None) -> Stack:
    if profile is not None:
        return load_stack(profile=profile, overrides=list(overrides))
    return stack_from_answers(recorded, list(overrides))


# ---- rendering and the render commit ------------------------------------------------


@contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-update-") as scratch:
        yield Path(scratch)


def _quarantine(repo: _Repo, workdir: Path) -> dict[str, str]:
    """Env that makes git write new objects to ``workdir`` while reading the project's."""
    objects = workdir / "objects"
    objects.mkdir()
    return {
        "GIT_OBJECT_DIRECTORY": str(objects),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo.objects),
    }


def find_base(project_dir: Path) -> str | None:
    """Return the newest pristine render commit in the history of ``HEAD``, if any."""
    return _find_base(_repository(project_dir.expanduser().resolve()))


def _find_base(repo: _Repo) -> str | None:
    """Find the newest genuine render commit reachable from ``HEAD``.

    A genuine render has no parent (``new``, adoption) or only render parents (``update``).
    A commit that carries the trailer but sits on a user commit is a rebased or
    cherry-picked copy whose tree is not a pristine render; it is skipped, because a merge
    based on it would undo the user's edits.
    """
    listing = repo.out(
        "rev-list", "--topo-order", "--no-merges", "--parents", f"--grep=^{RENDER_TRAILER}:", "HEAD"
    )
    rows = [line.split() for line in listing.splitlines()]
    renders = {row[0] for row in rows}
    for commit, *parents in rows:
        if all(parent in renders for parent in parents):
            return commit
    return None


def _render_and_commit(
    repo: _Repo,
    answers: dict[str, Any],
    workdir: Path,
    extra: dict[str, str],
    template: Path | None,
) -> _Render:
    """Render into ``workdir``, compare with the base render and commit the new tree."""
    base = _find_base(repo)
    reference = _answers_text(repo, base or "HEAD")
    rendered = workdir / "render"
    render(answers, rendered, template=template)
    answers_file = rendered / ANSWERS_FILE
    _copy_line(answers_file, _SRC_PATH_LINE, reference)
    tree = _write_tree(repo, rendered, workdir / "index", extra)
    if base is not None and _same_content(repo, rendered, workdir, extra, tree, base, reference):
        return _Render(base, base, True, Changes())
    changes = _changes(repo, base, tree, extra)
    commit = _commit(repo, tree, base, answers, extra)
    return _Render(base, commit, False, changes)


def _answers_text(repo: _Repo, revision: str) -> str:
    shown = repo.probe("show", f"{revision}:{ANSWERS_FILE}")
    return shown.stdout if shown.returncode == 0 else ""


def _copy_line(path: Path, pattern: re.Pattern[str], reference: str) -> None:
    """Make the line matching ``pattern`` in ``path`` the same as in ``reference``."""
    wanted = pattern.search(reference)
    if wanted is None or not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    path.write_text(pattern.sub(lambda _: wanted.group(0), text, count=1), encoding="utf-8")


def _write_tree(repo: _Repo, work_tree: Path, index: Path, extra: dict[str, str]) -> str:
    """Stage ``work_tree`` in a temporary index (``git add -A`` rules) and write its tree."""
    env = {
        **extra,
        "GIT_DIR": str(repo.git_dir),
        "GIT_WORK_TREE": str(work_tree),
        "GIT_INDEX_FILE": str(index),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.fsmonitor",
        "GIT_CONFIG_VALUE_0": "false",
    }
    repo.run("add", "--all", extra=env, cwd=work_tree)
    return repo.run("write-tree", extra=env, cwd=work_tree).stdout.strip()


def _same_content(
    repo: _Repo,
    rendered: Path,
    workdir: Path,
    extra: dict[str, str],
    tree: str,
    base: str,
    reference: str,
) -> bool:
    """Tell whether the render equals the base render, the recorded version stamp aside."""
    base_tree = repo.out("rev-parse", f"{base}^{{tree}}")
    if tree == base_tree:
        return True
    answers_file = rendered / ANSWERS_FILE
    if not answers_file.is_file():
        return False
    original = answers_file.read_text(encoding="utf-8")
    _copy_line(answers_file, _VERSION_LINE, reference)
    if answers_file.read_text(encoding="utf-8") == original:
        return False
    try:
        return _write_tree(repo, rendered, workdir / "index", extra) == base_tree
    finally:
        answers_file.write_text(original, encoding="utf-8")


def _changes(repo: _Repo, base: str | None, tree: str, extra: dict[str, str]) -> Changes:
    """Files the template changed since ``base``; for adoption, differences from HEAD."""
    old = base or "HEAD"
    listing = repo.out(
        "diff-tree", "-r", "-z", "--no-renames", "--name-status", old, tree, extra=extra
    )
    fields = [part for part in listing.split("\0") if part]
    added: list[str] = []
    removed: list[str] = []
    modified: list[str] = []
    for status, path in zip(fields[::2], fields[1::2], strict=True):
        if status == "A":
            added.append(path)
        elif status == "D":
            if base is not None:
                removed.append(path)
        else:
            modified.append(path)
    return Changes(sorted(added), sorted(removed), sorted(modified))


def _commit(
    repo: _Repo, tree: str, base: str | None, answers: dict[str, Any], extra: dict[str, str]
) -> str:
    profile = answers.get("profile", "custom")
    summary = f"Render the mlops-scaffold {__version__} template (profile {profile})"
    if base is None:
        summary += " to adopt the project"
    parents = ["-p", base] if base is not None else []
    message = commit_message(summary, __version__)
    return repo.out("commit-tree", tree, *parents, "-m", message, extra=extra)


# ---- merging ------------------------------------------------------------------------


def _predict_conflicts(repo: _Repo, rendered: _Render, extra: dict[str, str]) -> list[str]:
    """Files ``git merge`` would conflict on, from an in-memory ``git merge-tree``."""
    unrelated = ["--allow-unrelated-histories"] if rendered.base is None else []
    result = repo.probe(
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        *unrelated,
        "HEAD",
        rendered.commit,
        extra=extra,
    )
    if result.returncode not in (0, 1):
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ProjectError(f"git merge-tree failed in {repo.root}: {detail[-1] if detail else ''}")
    names = result.stdout.split("\0")[1:]
    return sorted({name for name in names if name})


def _user_changed(repo: _Repo, rendered: _Render) -> list[str]:
    """Files the template changed that the user also changed since the base render."""
    if rendered.base is None:
        return list(rendered.changes.modified)
    listing = repo.out(
        "diff-tree", "-r", "-z", "--no-renames", "--name-only", rendered.base, "HEAD"
    )
    mine = {path for path in listing.split("\0") if path}
    return [path for path in rendered.changes.files if path in mine]


def _check_ignored_clashes(repo: _Repo, changes: Changes) -> None:
    """Refuse when the template writes a path the user keeps as an ignored, untracked file.

    ``git merge`` would overwrite such a file silently.
    """
    written = [*changes.added, *changes.modified]
    candidates = [path for path in written if (repo.root / path).exists()]
    if not candidates:
        return
    tracked = set(repo.out("ls-files", "-z", "--", *candidates).split("\0"))
    clashes = [path for path in candidates if path not in tracked]
    if clashes:
        raise ProjectError(
            f"{repo.root}: the template writes {', '.join(clashes)}, which your work tree "
            "holds as untracked files ignored by git; move them away and run update again"
        )


def _merge(repo: _Repo, rendered: _Render) -> str:
    """Merge the render commit into the current branch; return the merge commit."""
    unrelated = ["--allow-unrelated-histories"] if rendered.base is None else []
    message = f"Update from the mlops-scaffold {__version__} template"
    result = repo.probe(
        "merge",
        "--no-ff",
        "--no-edit",
        "--no-verify",
        "--no-rerere-autoupdate",
        *unrelated,
        "-m",
        message,
        rendered.commit,
    )
    if result.returncode == 0:
        return repo.out("rev-parse", "HEAD")
    if (repo.git_dir / "MERGE_HEAD").exists():
        conflicts = _unmerged(repo)
        raise MergeConflictError(
            f"update of {repo.root} stopped with {len(conflicts)} conflicted file(s); the "
            "merge is in progress: resolve the conflicts (or `git mergetool`), then "
            "`git add` them and `git commit`; or undo it all with `git merge --abort`",
            conflicts,
        )
    detail = (result.stderr or result.stdout).strip().splitlines()
    raise ProjectError(f"git merge failed in {repo.root}: {detail[-1] if detail else ''}")


def _unmerged(repo: _Repo) -> list[str]:
    listing = repo.out("diff", "--name-only", "-z", "--diff-filter=U")
    return sorted({path for path in listing.split("\0") if path})


def _result(
    repo: _Repo,
    status: str,
    rendered: _Render,
    merge_commit: str | None,
    conflicts: list[str] | None = None,
) -> UpdateResult:
    render_commit = None if rendered.current or status == DRY_RUN else rendered.commit
    return UpdateResult(
        repo.root,
        status,
        __version__,
        rendered.base,
        render_commit,
        merge_commit,
        rendered.changes,
        conflicts or [],
    )
