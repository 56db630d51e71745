"""Thin wrappers around the git CLI for the tool's own commits.

The tool commits pristine renders on behalf of the user; where no git identity is
configured (fresh CI machines) it falls back to a neutral one instead of failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import ProjectError, ToolMissingError

TEMPLATE_BRANCH = "mlops-scaffold/template"
RENDER_TRAILER = "Mlops-Scaffold-Template-Render"
# The id of the tree the template rendered, recorded next to RENDER_TRAILER so that
# ``update`` can tell a pristine render commit from one rewritten later (amended, squashed).
TREE_TRAILER = "Mlops-Scaffold-Template-Tree"
_FALLBACK_NAME = "mlops-scaffold"
_FALLBACK_EMAIL = "mlops-scaffold@localhost"


def require_git() -> str:
    """Return the git executable or raise a user-facing error if git is missing."""
    executable = shutil.which("git")
    if executable is None:
        raise ToolMissingError("git is not installed; install git or pass --no-git")
    return executable


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for git calls: the user's identity if configured, else a fallback one."""
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    configured = _configured_identity()
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", configured.get("user.name") or _FALLBACK_NAME)
        env.setdefault(f"GIT_{role}_EMAIL", configured.get("user.email") or _FALLBACK_EMAIL)
    if extra:
        env.update(extra)
    return env


def _configured_identity() -> dict[str, str]:
    """``user.name`` and ``user.email`` from git config, in one git call (last value wins)."""
    result = subprocess.run(
        [require_git(), "config", "--get-regexp", r"^user\.(name|email)$"],
        capture_output=True,
        text=True,
        check=False,
    )
    identity: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        identity[key.lower()] = value.strip()
    return identity


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd``; raise :class:`ProjectError` with git's message on failure."""
    result = subprocess.run(
        [require_git(), *args],
        cwd=cwd,
        env=env or git_env(),
        capture_output=True,
        text=True,
        errors="surrogateescape",  # file names and messages need not be UTF-8
        check=False,
    )
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit code {result.returncode}"
        raise ProjectError(f"git {args[0]} failed in {cwd}: {detail}")
    return result


def commit_message(summary: str, version: str, tree: str) -> str:
    """Commit message of a pristine render: the trailers ``update`` searches for and checks.

    ``tree`` is the id of the rendered tree; a commit whose tree differs from it is no
    longer the render (it was amended or squashed) and is never used as a merge base.
    """
    return f"{summary}\n\n{RENDER_TRAILER}: {version}\n{TREE_TRAILER}: {tree}\n"
