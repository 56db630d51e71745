"""Creating a project: check the destination, render to a temp dir, git-commit, move into place.

A failed ``new`` leaves nothing behind: everything happens in a sibling temp directory
that is renamed to the destination only once the render (and the first commit) is complete.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .catalogue import catalogue
from .errors import DestinationError
from .gitutil import TEMPLATE_BRANCH, commit_message, git, git_env, require_git
from .render import render
from .stacks import Stack

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


def project_answers(stack: Stack, destination: Path) -> dict[str, Any]:
    """Copier answers for rendering ``stack`` into ``destination``."""
    return {
        **stack.to_answers(),
        "project_name": destination.name,
        "scaffold_version": __version__,
    }


def check_destination(destination: Path) -> None:
    """Raise if ``destination`` cannot receive a new project (exists and is not empty)."""
    if not PROJECT_NAME.match(destination.name):
        raise DestinationError(
            f"DEST {str(destination)!r}: the directory name becomes the project name and must "
            "start with a letter and contain only letters, digits, '-' and '_'"
        )
    if destination.exists():
        if not destination.is_dir():
            raise DestinationError(f"DEST {str(destination)!r} exists and is not a directory")
        if any(destination.iterdir()):
            raise DestinationError(f"DEST {str(destination)!r} exists and is not empty")


def _services(stack: Stack) -> list[ServicePort]:
    settings = stack.settings.model_dump()
    services = []
    for slot, value in stack.slots.model_dump().items():
        for service in catalogue().components[slot][value].services:
            port = settings.get(service.port_setting) if service.port_setting else None
            services.append(ServicePort(service.name, port))
    return services


def plan_project(stack: Stack, destination: Path) -> Plan:
    """Compute what ``new`` would write, by rendering into a scratch directory."""
    destination = destination.expanduser().resolve()
    check_destination(destination)
    components = [
        (slot, value, catalogue().components[slot][value].description)
        for slot, value in stack.slots.model_dump().items()
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
) -> Path:
    """Render ``stack`` into ``destination`` atomically and return the project's path.

    With ``init_git`` the pristine render is committed on ``main`` and on the
    ``mlops-scaffold/template`` branch, which ``update`` later uses as the merge base.
    ``template`` renders another template directory (tests and benchmarks; default: the
    installed one).
    """
    destination = destination.expanduser().resolve()
    check_destination(destination)
    if init_git:
        require_git()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        target = staging / destination.name
        answers = project_answers(stack, destination)
        render(answers, target, interactive=interactive, template=template)
        if init_git:
            _initial_commit(target, stack)
        if destination.exists():
            destination.rmdir()
        target.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


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
