"""Update a generated project to the installed template without losing a user's edit.

The mechanism is git's own three-way merge, with the template's renders as one side:

* Every render of the template is kept as a *pristine render* commit: its tree is exactly
  what the template produced, and its message carries the trailers
  ``Mlops-Scaffold-Template-Render: <version>`` and ``Mlops-Scaffold-Template-Tree: <tree>``
  (the id of the rendered tree). ``new`` makes the first one; each update adds a child of
  the previous one on the branch ``mlops-scaffold/template``.
* ``update`` finds the newest *trusted* render commit in the history of ``HEAD`` (the
  *base*): one whose tree is a tree the tool rendered. A commit that carries the trailers
  but whose tree differs (amended, squashed into, cherry-picked onto user commits) holds
  user edits: merging from it would take them for template content and undo them, so it
  is never a base. Render commits made before the tree was recorded (legacy) are trusted
  when their tree is the tree of a render commit on the ``mlops-scaffold/template`` branch
  (local or a remote's), which only the tool commits to.
* It renders the recorded answers with the installed template into an empty temp dir,
  commits that tree as a child of the base through a temporary index (the user's index
  and work tree are never touched), checks that the merge would not overwrite or delete
  any untracked or ignored file (including files standing where the merge needs a
  directory, and directories where it writes a file), and ``git merge --no-ff``-s it into
  the current branch. Git applies exactly what the template changed since the base, keeps
  everything the user changed that the template did not, and stops with conflict markers
  (leaving the merge in progress) where both changed the same thing.
* Whether there is anything to do is decided by content: a render whose tree equals the
  base's tree (apart from the version stamp and the template's path in the answers file)
  is a no-op, whatever the version strings say.
* Without a trusted base ``update`` refuses, saying why: a shallow clone (deepen it), a
  rewritten render commit, or none at all (``--no-git`` projects committed by hand). With
  ``adopt=True`` (``update --adopt``) the current template's render becomes a parentless
  render commit merged with ``--allow-unrelated-histories``: with no common ancestor git
  cannot tell the user's edits from template changes, so every difference between the
  project and the template is shown as a conflict to resolve once; later updates have a
  real base.
* One update at a time: an exclusive ``flock`` on the repository's git directory (shared
  for ``diff`` and dry runs, which may run side by side). The kernel releases it when the
  process ends, so a killed run never leaves a stale lock.

``diff_project`` and ``update_project(dry_run=True)`` do the same work with git's objects
written to a temporary object directory, so nothing is written to the project.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .answers import CONTROL_CHARACTERS, update_answers
from .errors import MergeConflictError, ProjectError
from .gitutil import (
    RENDER_TRAILER,
    TEMPLATE_BRANCH,
    TREE_TRAILER,
    commit_message,
    git,
    git_env,
)
from .owndata.contract import SOURCE_DIR
from .render import ANSWERS_FILE, render

__all__ = [
    "DiffResult",
    "UpdateResult",
    "diff_project",
    "update_project",
]

UP_TO_DATE = "up-to-date"
UPDATED = "updated"
ADOPTED = "adopted"
DRY_RUN = "dry-run"

TEMPLATE_BRANCH_REF = f"refs/heads/{TEMPLATE_BRANCH}"
ADOPT_HINT = (
    "git init && git add -A && git commit -m 'Adopt generated project', "
    "then run `mlops-scaffold update --adopt`"
)
ADOPTION_MEANS = (
    "`mlops-scaffold update --adopt` merges the template without a base: every difference "
    "between your project and the template is shown once as a conflict to resolve, and "
    "later updates are ordinary merges again"
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
_TREE_LINE = re.compile(rf"^{TREE_TRAILER}: *([0-9a-f]{{40,64}}) *$", re.MULTILINE)


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
    """What an update would change in a project; nothing was written to it.

    ``adopt_reason`` says why there is no trusted base when ``base`` is None (the
    changes then are those an ``update --adopt`` would merge).
    """

    project: Path
    version: str
    base: str | None
    behind: bool
    changes: Changes
    user_changed: list[str]
    conflicts: list[str]
    adopt_reason: str | None = None


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
    common_dir: Path
    env: dict[str, str]

    @property
    def objects(self) -> Path:
        """The repository's object directory (shared by its worktrees)."""
        return self.common_dir / "objects"

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
class _Base:
    """The trusted render commit to merge from, or why there is none."""

    commit: str | None
    reason: str = ""


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
    adopt: bool = False,
    template: Path | None = None,
) -> UpdateResult:
    """Merge what the installed template changed since the project's last render.

    ``overrides`` (``KEY=VALUE``) change recorded answers and ``profile`` switches to a
    built-in profile (keeping ``project_name``); components they add or drop arrive
    through the same merge. Raises :class:`ProjectError` before touching anything when the
    directory is not a clean, generated project at the top of its own git repository, on
    a branch, with a trusted render commit in its history (or ``adopt``), and when the
    merge would overwrite or delete untracked or ignored files; raises
    :class:`MergeConflictError` (merge left in progress) when the merge conflicts.
    ``dry_run`` reports what would change and writes nothing.
    """
    repo = _open(project_dir)
    with _locked(repo, shared=dry_run):
        _require_commit(repo)
        _require_no_operation(repo)
        if not dry_run:
            _require_branch(repo)
        _require_clean(repo)
        answers = update_answers(repo.root, overrides, profile)
        base = _find_trusted_base(repo)
        if base.commit is None and not adopt:
            raise ProjectError(base.reason)
        with _workspace() as workdir:
            extra = _quarantine(repo, workdir / "dry-run") if dry_run else {}
            rendered = _render_and_commit(repo, base.commit, answers, workdir, extra, template)
            if rendered.current:
                return _result(repo, UP_TO_DATE, rendered, None)
            predicted = extra or _quarantine(repo, workdir / "predict")
            merge_tree, conflicts = _merge_tree(repo, rendered, predicted)
            if dry_run:
                return _result(repo, DRY_RUN, rendered, None, conflicts)
            written = _merge_writes(repo, rendered.changes, merge_tree, conflicts, predicted)
            _check_untracked_clashes(repo, written)
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
    change something (always when there is no trusted base: then ``adopt_reason`` says
    why, and the changes are those of an adoption). A shallow clone without a trusted
    base is refused: what is missing is the history, not the render.
    """
    repo = _open(project_dir)
    with _locked(repo, shared=True):
        _require_commit(repo)
        answers = update_answers(repo.root, overrides, profile)
        base = _find_trusted_base(repo)
        if base.commit is None and _is_shallow(repo):
            raise ProjectError(base.reason)
        with _workspace() as workdir:
            extra = _quarantine(repo, workdir / "quarantine")
            rendered = _render_and_commit(repo, base.commit, answers, workdir, extra, template)
            if rendered.current:
                return DiffResult(repo.root, __version__, rendered.base, False, Changes(), [], [])
            _, conflicts = _merge_tree(repo, rendered, extra)
            user_changed = _user_changed(repo, rendered)
    return DiffResult(
        repo.root,
        __version__,
        rendered.base,
        True,
        rendered.changes,
        user_changed,
        conflicts,
        base.reason or None,
    )


# ---- checks before anything is touched -------------------------------------------


def _open(project_dir: Path) -> _Repo:
    """Check that ``project_dir`` is a generated project at the top of its own repository."""
    try:
        project = project_dir.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a path over the OS limit
        reason = getattr(exc, "strerror", None) or "symlink loop"
        raise ProjectError(f"{project_dir}: cannot resolve the path ({reason})") from None
    if not project.is_dir():
        raise ProjectError(f"{project}: not a directory")
    if not (project / ANSWERS_FILE).is_file():
        raise ProjectError(
            f"{project}: not a generated project ({ANSWERS_FILE} is missing); "
            "update works on projects created by `mlops-scaffold new`"
        )
    if (project / ".hg").is_dir() and not (project / ".git").exists():
        raise ProjectError(
            f"{project}: a Mercurial repository (vcs=hg); update needs git: it merges template "
            f"changes with git, so convert the project to git first ({ADOPT_HINT})"
        )
    return _repository(project)


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
    return _Repo(project, Path(git_dir), (project / common).resolve(), env)


@contextmanager
def _locked(repo: _Repo, *, shared: bool) -> Iterator[None]:
    """Hold the repository's update lock (shared: diff, dry run; exclusive: update).

    The lock is a ``flock`` on the repository's git directory itself (shared by its
    worktrees): nothing is created, and the kernel releases it when the process ends, so
    a killed update never leaves a stale lock behind.
    """
    path = repo.common_dir
    try:
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ProjectError(f"{path}: cannot open the git directory ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProjectError(
                f"{repo.root}: another `mlops-scaffold update` or `diff` is running on this "
                f"repository (it holds a lock on {path}); wait for it to finish and run "
                "this again"
            ) from None
        except OSError as exc:
            raise ProjectError(f"{path}: cannot lock the git directory ({exc.strerror})") from None
        yield
    finally:
        os.close(handle)


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
    branch = repo.probe("symbolic-ref", "--quiet", "HEAD").stdout.strip()
    locks = [repo.git_dir / "index.lock", repo.git_dir / "HEAD.lock"]
    locks += [repo.common_dir / "packed-refs.lock", repo.common_dir / f"{TEMPLATE_BRANCH_REF}.lock"]
    if branch:
        locks.append(repo.common_dir / f"{branch}.lock")
    for lock in locks:
        if lock.exists():
            raise ProjectError(
                f"{repo.root}: git's lock {lock} exists: another git command is running, or "
                "one was interrupted; when no git command is running, delete it and run "
                "update again"
            )


def _require_branch(repo: _Repo) -> None:
    if repo.probe("symbolic-ref", "--quiet", "HEAD").returncode != 0:
        raise ProjectError(
            f"{repo.root}: HEAD is detached (not on a branch), so the update's merge commit "
            "would belong to no branch; switch to your branch (git switch NAME, or "
            "git switch -c NAME to create one here) and run update again"
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


# ---- the base: a render commit whose tree is still the render's ---------------------


def find_base(project_dir: Path) -> str | None:
    """Return the newest trusted render commit in the history of ``HEAD``, if any."""
    return _find_trusted_base(_repository(project_dir.expanduser().resolve())).commit


def _render_commits(repo: _Repo, revisions: list[str]) -> list[tuple[str, str, str | None]]:
    """(commit, tree, recorded tree or None) of render commits reachable from revisions."""
    if not revisions:
        return []
    listing = repo.out(
        "log",
        "-z",
        "--topo-order",
        "--no-merges",
        f"--grep=^{RENDER_TRAILER}:",
        "--format=%H%x1f%T%x1f%B",
        *revisions,
        "--",
    )
    rows = []
    for record in listing.split("\0"):
        if not record.strip():
            continue
        commit, tree, message = record.strip("\n").split("\x1f", 2)
        recorded = _TREE_LINE.findall(message)
        rows.append((commit, tree, recorded[-1] if recorded else None))
    return rows


def _template_refs(repo: _Repo) -> list[str]:
    """Return the template branch and the remotes' copies of it that exist."""
    listing = repo.out("for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/")
    return [
        ref
        for ref in listing.splitlines()
        if ref == f"refs/heads/{TEMPLATE_BRANCH}"
        or (ref.startswith("refs/remotes/") and ref.endswith(f"/{TEMPLATE_BRANCH}"))
    ]


def _is_shallow(repo: _Repo) -> bool:
    return repo.out("rev-parse", "--is-shallow-repository") == "true"


def _find_trusted_base(repo: _Repo) -> _Base:
    """Find the newest render commit in ``HEAD``'s history whose tree is a pristine render.

    Pristine trees are those recorded in a render commit's tree trailer, and, for render
    commits made before trees were recorded, the trees of render commits on the template
    branch (the tool's own; amending, squashing or rebasing on the user's branch never
    moves it). A trailer-carrying commit with any other tree holds user edits and is
    skipped: a merge based on it would take them for template content and undo them.
    """
    candidates = _render_commits(repo, ["HEAD"])
    refs = _template_refs(repo)
    on_branch = _render_commits(repo, refs)
    pristine = {recorded for _, _, recorded in candidates + on_branch if recorded}
    pristine |= {tree for _, tree, recorded in on_branch if recorded is None}
    for commit, tree, _ in candidates:
        if tree in pristine:
            return _Base(commit)
    root = repo.root
    if _is_shallow(repo):
        return _Base(
            None,
            f"{root}: this is a shallow clone and its history does not reach a render "
            "commit of the template, the base of the merge; deepen it "
            "(git fetch --unshallow) and run update again",
        )
    if not candidates:
        return _Base(
            None,
            f"{root}: no render commit of the template in the history of HEAD (generated "
            f"with --no-git, or the history was replaced); {ADOPTION_MEANS}",
        )
    newest = candidates[0][0][:12]
    if not refs and all(recorded is None for _, _, recorded in candidates):
        return _Base(
            None,
            f"{root}: the render commit {newest}, made by an older mlops-scaffold, can only "
            f"be checked against the {TEMPLATE_BRANCH} branch, which this clone lacks; fetch "
            f"it (git fetch origin {TEMPLATE_BRANCH}:{TEMPLATE_BRANCH}) and run update "
            f"again, or: {ADOPTION_MEANS}",
        )
    return _Base(
        None,
        f"{root}: the render commit {newest} was rewritten (amended, squashed or rebased: "
        "its files are no longer the template's render), so there is no trustworthy merge "
        f"base; {ADOPTION_MEANS}",
    )


# ---- rendering and the render commit ------------------------------------------------


@contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-update-") as scratch:
        yield Path(scratch)


def _quarantine(repo: _Repo, directory: Path) -> dict[str, str]:
    """Env that makes git write new objects to ``directory`` while reading the project's."""
    objects = directory / "objects"
    objects.mkdir(parents=True)
    return {
        "GIT_OBJECT_DIRECTORY": str(objects),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo.objects),
    }


def _render_and_commit(
    repo: _Repo,
    base: str | None,
    answers: dict[str, Any],
    workdir: Path,
    extra: dict[str, str],
    template: Path | None,
) -> _Render:
    """Render into ``workdir``, compare with the base render and commit the new tree."""
    reference = _answers_text(repo, base or "HEAD")
    rendered = workdir / "render"
    render(answers, rendered, template=template)
    if base is not None:
        _carry_source_files(repo, base, rendered, workdir, extra)
    answers_file = rendered / ANSWERS_FILE
    _copy_line(answers_file, _SRC_PATH_LINE, reference)
    tree = _write_tree(repo, rendered, workdir / "index", extra)
    if base is not None and _same_content(repo, rendered, workdir, extra, tree, base, reference):
        return _Render(base, base, True, Changes())
    changes = _changes(repo, base, tree, extra)
    commit = _commit(repo, tree, base, answers, extra)
    return _Render(base, commit, False, changes)


def _carry_source_files(
    repo: _Repo, base: str, rendered: Path, workdir: Path, extra: dict[str, str]
) -> None:
    """Put the base render's ``data/source/`` files (``new --data``'s) into the new render.

    ``new --data`` commits the user's table's DVC file and ``.gitignore`` with the pristine
    render; the template does not render them, so without this the template side of the
    merge would delete them. Carried from the base, they are unchanged on that side and
    the user's versions (a newer ``dvc add``) are kept.
    """
    source = SOURCE_DIR.as_posix()
    if not repo.out("ls-tree", "--name-only", base, "--", f"{source}/", extra=extra):
        return
    env = {
        **extra,
        "GIT_DIR": str(repo.git_dir),
        "GIT_WORK_TREE": str(rendered),
        "GIT_INDEX_FILE": str(workdir / "carry"),
    }
    repo.run("checkout", base, "--", source, extra=env, cwd=rendered)


def _answers_text(repo: _Repo, revision: str) -> str:
    try:
        shown = repo.probe("show", f"{revision}:{ANSWERS_FILE}")
    except UnicodeDecodeError:
        return ""
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
    message = commit_message(summary, __version__, tree)
    return repo.out("commit-tree", tree, *parents, "-m", message, extra=extra)


# ---- merging ------------------------------------------------------------------------


def _merge_tree(repo: _Repo, rendered: _Render, extra: dict[str, str]) -> tuple[str, list[str]]:
    """Return the tree ``git merge`` would produce and the files it would conflict on.

    Computed in memory by ``git merge-tree`` (its objects go to the quarantine ``extra``).
    """
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
    tree, *names = result.stdout.split("\0")
    return tree.strip(), sorted({name for name in names if name})


def _user_changed(repo: _Repo, rendered: _Render) -> list[str]:
    """Files the template changed that the user also changed since the base render."""
    if rendered.base is None:
        return list(rendered.changes.modified)
    listing = repo.out(
        "diff-tree", "-r", "-z", "--no-renames", "--name-only", rendered.base, "HEAD"
    )
    mine = {path for path in listing.split("\0") if path}
    return [path for path in rendered.changes.files if path in mine]


def _merge_writes(
    repo: _Repo, changes: Changes, merge_tree: str, conflicts: list[str], extra: dict[str, str]
) -> list[str]:
    """Return every path the merge may write into the work tree.

    The template's additions and modifications, what differs between ``HEAD`` and the
    merge's tree (which also holds git's own placements: renamed directories, ``path~side``
    copies of file/directory conflicts) and the conflicted files.
    """
    listing = repo.out(
        "diff-tree", "-r", "-z", "--no-renames", "--name-only", "HEAD", merge_tree, extra=extra
    )
    paths = {path for path in listing.split("\0") if path}
    return sorted(paths | set(changes.added) | set(changes.modified) | set(conflicts))


def _check_untracked_clashes(repo: _Repo, written: list[str]) -> None:
    """Refuse when the merge would overwrite or delete content git does not track.

    Git overwrites ignored files silently, and deletes an ignored file that stands where
    it needs a directory (``docs`` for ``docs/new.md``) or ignored files inside a
    directory where it writes a file. Tracked content in the way is git's business: it
    reports a conflict and keeps both sides.
    """
    if not written:
        return
    tracked = set(repo.out("ls-tree", "-r", "-z", "--name-only", "HEAD").split("\0"))
    problems: list[str] = []
    checked: set[str] = set()
    for path in written:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            current = "/".join(parts[:depth])
            if current in checked:
                continue
            checked.add(current)
            try:
                mode = os.lstat(repo.root / current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            leaf = depth == len(parts)
            if stat.S_ISDIR(mode):
                if leaf and current not in tracked:
                    untracked = _untracked_under(repo, current)
                    if untracked:
                        problems.append(
                            f"{current}/ (a directory holding {untracked[0]}, which git does "
                            "not track, where the template writes a file)"
                        )
                continue
            if current not in tracked:
                needs = "" if leaf else f" where the template needs a directory for {path}"
                problems.append(f"{current} (an untracked or ignored file{needs})")
            break
    if problems:
        shown = "; ".join(_one_line(problem) for problem in problems[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ProjectError(
            f"{repo.root}: the update would overwrite or delete files git does not track: "
            f"{shown}{more}; move them away (or commit them) and run update again"
        )


def _one_line(text: str) -> str:
    """Quote text holding a line break or another control character (a file name may)."""
    return repr(text) if CONTROL_CHARACTERS.search(text) else text


def _untracked_under(repo: _Repo, directory: str) -> list[str]:
    """Untracked files, ignored ones included, under ``directory`` of the work tree."""
    listing = repo.out("ls-files", "--others", "-z", "--", f"{directory}/")
    return sorted(path for path in listing.split("\0") if path)


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
