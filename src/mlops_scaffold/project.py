"""Creating a project: check the destination, render to a temp dir, git-commit, move into place.

A failed ``new`` leaves nothing behind: everything happens in a sibling temp directory
that is renamed to the destination only once the render (and the first commit) is complete.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .answers import project_answers
from .catalogue import catalogue
from .errors import DestinationError, ProjectError, ToolMissingError
from .gitutil import TEMPLATE_BRANCH, commit_message, git, git_env, require_git
from .render import render
from .stacks import Stack

if TYPE_CHECKING:
    from .owndata.schema import DataSchema

__all__ = [
    "Plan",
    "ServicePort",
    "create_project",
    "plan_project",
]

PROJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ServicePort:
    """A service of the stack and the 127.0.0.1 port it listens on."""

    name: str
    port: int | None


@dataclass
class Plan:
    """What ``new`` would create: components, services with ports, and files."""

    stack: Stack
    destination: Path
    components: list[tuple[str, str, str]]
    services: list[ServicePort]
    files: list[str] = field(default_factory=list)


MAX_NAME_LENGTH = 64


def resolve_destination(destination: Path) -> Path:
    """Return ``destination`` absolute with symlinks resolved, or raise DestinationError."""
    try:
        return destination.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise DestinationError(f"DEST {str(destination)!r}: cannot resolve it ({exc})") from None


def check_destination(destination: Path) -> None:
    """Raise :class:`DestinationError` if ``destination`` cannot receive a new project.

    The name must be a project name (the whole string: no trailing newline) whose
    package name is neither a Python keyword nor a standard-library module, the
    destination must not exist or be an empty directory, and its nearest existing
    ancestor must be a directory this process can write in.
    """
    name = destination.name
    if not PROJECT_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise DestinationError(
            f"DEST {str(destination)!r}: the directory name becomes the project name and must "
            "start with a letter, contain only letters, digits, '-' and '_', and have at most "
            f"{MAX_NAME_LENGTH} characters"
        )
    package = name.lower().replace("-", "_")
    if keyword.iskeyword(package):
        raise DestinationError(
            f"DEST {str(destination)!r}: the package name {package!r} is a Python keyword; "
            "choose another directory name"
        )
    if package in sys.stdlib_module_names:
        raise DestinationError(
            f"DEST {str(destination)!r}: the package name {package!r} would shadow the "
            "standard-library module of that name; choose another directory name"
        )
    try:
        if destination.exists() or destination.is_symlink():
            if not destination.is_dir():
                raise DestinationError(f"DEST {str(destination)!r} exists and is not a directory")
            if any(destination.iterdir()):
                raise DestinationError(f"DEST {str(destination)!r} exists and is not empty")
        ancestor = destination.parent
        while not ancestor.exists() and not ancestor.is_symlink():
            ancestor = ancestor.parent
    except OSError as exc:
        raise DestinationError(
            f"DEST {str(destination)!r}: cannot inspect it ({exc.strerror})"
        ) from None
    if not ancestor.is_dir():
        raise DestinationError(f"DEST {str(destination)!r}: {str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DestinationError(
            f"DEST {str(destination)!r}: no permission to write in {str(ancestor)!r}"
        )


def _services(stack: Stack) -> list[ServicePort]:
    settings = stack.settings.model_dump()
    services = []
    for slot, value in stack.components():
        for service in catalogue().components[slot][value].services:
            port = settings.get(service.port_setting) if service.port_setting else None
            services.append(ServicePort(service.name, port))
    return services


def plan_project(stack: Stack, destination: Path) -> Plan:
    """Compute what ``new`` would write, by rendering into a scratch directory."""
    destination = resolve_destination(destination)
    check_destination(destination)
    components = [
        (slot, value, catalogue().components[slot][value].description)
        for slot, value in stack.components()
    ]
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-plan-") as scratch:
        target = Path(scratch) / destination.name
        render(project_answers(stack, destination), target)
        files = sorted(
            path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file()
        )
    return Plan(stack, destination, components, _services(stack), files)


def create_project(
    stack: Stack,
    destination: Path,
    *,
    interactive: bool = False,
    init_git: bool = True,
    template: Path | None = None,
    data: DataSchema | None = None,
) -> Path:
    """Render ``stack`` into ``destination`` atomically and return the project's path.

    With ``init_git`` the pristine render is committed on ``main`` and on the
    ``mlops-scaffold/template`` branch, which ``update`` later uses as the merge base.
    ``template`` renders another template directory (tests and benchmarks; default: the
    installed one). ``data`` (the schema inferred by ``new --data``) renders the project
    for that table (the ``data_schema`` answer) and copies it in, versioned by DVC.
    """
    destination = resolve_destination(destination)
    check_destination(destination)
    if init_git and stack.settings.model_dump().get("vcs") == "hg":
        require_hg()
    elif init_git:
        require_git()
    created = _missing_ancestors(destination)
    existed = destination.is_dir()
    staging: Path | None = None
    try:
        for directory in reversed(created):
            directory.mkdir()
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        target = staging / destination.name
        answers = project_answers(stack, destination)
        if data is not None:
            from .owndata.contract import install_source, schema_answer

            answers["data_schema"] = schema_answer(data)
        render(answers, target, interactive=interactive, template=template)
        if data is not None:
            install_source(data, target)
        if init_git and stack.settings.model_dump().get("vcs") == "hg":
            _initial_hg_commit(target, stack)
        elif init_git:
            _initial_commit(target, stack)
        if destination.exists():
            destination.rmdir()
        target.rename(destination)
    except OSError as exc:
        _remove_created(staging, created)
        if existed:
            destination.mkdir(exist_ok=True)
        raise DestinationError(
            f"cannot write the project to {str(destination)!r}"
            f"{_while_writing(exc, staging)}: {exc.strerror or exc}; nothing was written"
        ) from None
    except BaseException:
        _remove_created(staging, created)
        if existed:
            destination.mkdir(exist_ok=True)
        raise
    _remove_created(staging, [])
    return destination


def _missing_ancestors(destination: Path) -> list[Path]:
    """Return the parents of ``destination`` that do not exist yet, nearest first."""
    missing = []
    parent = destination.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    return missing


def _while_writing(exc: OSError, staging: Path | None) -> str:
    """Name the file an error happened on, relative to the project when it is inside it."""
    if exc.filename is None:
        return ""
    path = Path(os.fsdecode(exc.filename))
    if staging is not None and path.is_relative_to(staging):
        parts = path.relative_to(staging).parts[1:]
        return f" (writing {'/'.join(parts)})" if parts else ""
    return f" ({path})"


def _remove_created(staging: Path | None, created: list[Path]) -> None:
    """Remove the staging directory and the parents ``create_project`` made, if empty."""
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    for directory in created:
        try:
            directory.rmdir()
        except OSError:
            break


def _initial_commit(project: Path, stack: Stack) -> None:
    """Commit the pristine render on ``main`` and the template branch, recording its tree.

    ``commit-tree`` rather than ``commit``: no hook (a user's ``init.templateDir`` may
    install some) can change the files or the message between the render and the commit.
    """
    env = git_env()
    git(project, "init", "--quiet", "--initial-branch=main", env=env)
    git(project, "add", "--all", env=env)
    tree = git(project, "write-tree", env=env).stdout.strip()
    summary = f"Generate project with mlops-scaffold {__version__} (profile {stack.name})"
    message = commit_message(summary, __version__, tree)
    commit = git(project, "commit-tree", tree, "-m", message, env=env).stdout.strip()
    git(project, "update-ref", "refs/heads/main", commit, env=env)
    git(project, "branch", TEMPLATE_BRANCH, env=env)


def require_hg() -> str:
    """Return the hg executable or raise a user-facing error if Mercurial is missing."""
    executable = shutil.which("hg")
    if executable is None:
        raise ToolMissingError(
            "vcs=hg needs Mercurial (hg) on PATH; install it (Debian: mercurial) or pass --no-git"
        )
    return executable


def _initial_hg_commit(project: Path, stack: Stack) -> None:
    """vcs=hg: a Mercurial repository with the pristine render committed (on ``default``).

    HGPLAIN and an empty HGRCPATH: no user extension or hook changes what is committed.
    The author is the git identity when one is configured (the same as ``new`` with git).
    """
    identity = git_env() if shutil.which("git") else {}
    name = identity.get("GIT_AUTHOR_NAME", "mlops-scaffold")
    email = identity.get("GIT_AUTHOR_EMAIL", "mlops-scaffold@localhost")
    env = {**os.environ, "HGPLAIN": "1", "HGRCPATH": "", "HGUSER": f"{name} <{email}>"}
    summary = f"Generate project with mlops-scaffold {__version__} (profile {stack.name})"
    for args in (["init"], ["add", "--quiet"], ["commit", "--quiet", "-m", summary]):
        result = subprocess.run(
            [require_hg(), *args], cwd=project, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ProjectError(f"hg {args[0]} failed in {project}: {detail[-1] if detail else ''}")
