"""Errors a user can cause, each with the exit code the CLI returns for it.

The core raises these; ``cli.py`` is the one place that turns them into a one-line
message on stderr and an exit code. Anything else is a bug and shows a traceback.

Exit codes of every command:

==== ==========================================================================
code meaning
==== ==========================================================================
0    success
1    a user error: one line ``error: ...`` naming the file, key or argument; also
     ``update`` on a Mercurial project (vcs=hg): update needs git
2    usage: arguments or options that do not fit together, unknown or missing
     (e.g. a bad value of ``--task``)
3    ``verify``/``smoke``: the generated project's verification ran and failed
4    ``update``: merged with conflicts, left in progress for the user
130  interrupted (Ctrl-C)
==== ==========================================================================
"""

from __future__ import annotations

__all__ = [
    "EXIT_CONFLICTS",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "EXIT_USER_ERROR",
    "EXIT_VERIFY_FAILED",
    "CatalogueError",
    "ContainerEngineError",
    "DataError",
    "DestinationError",
    "MergeConflictError",
    "ProjectError",
    "RenderError",
    "ScaffoldError",
    "StackError",
    "ToolMissingError",
    "UsageError",
]

EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFY_FAILED = 3
EXIT_CONFLICTS = 4
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    r"""Return ``text`` with every non-printable character escaped as in ``repr``.

    Newlines, carriage returns, tabs, Unicode line separators and undecodable bytes
    (surrogate escapes of non-UTF-8 arguments) become ``\n``, ``\u2028``, ``\udcff``...
    so a message quoting user input is always a single printable line.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class ScaffoldError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message


class StackError(ScaffoldError):
    """A stack file, profile name or ``--set`` override is invalid."""


class CatalogueError(ScaffoldError):
    """A component manifest or the catalogue's slots/settings file is invalid."""


class DestinationError(ScaffoldError):
    """The destination directory cannot receive a new project."""


class RenderError(ScaffoldError):
    """The template could not be rendered with the given answers."""


class ProjectError(ScaffoldError):
    """A directory is not a generated project, or not in a state we can work on."""


class DataError(ScaffoldError):
    """A ``--data`` table cannot be used: unreadable, too large, or unfit for its target."""


class ToolMissingError(ScaffoldError):
    """An external command the operation needs (git, make, uv) is not installed."""


class ContainerEngineError(ScaffoldError):
    """A Docker engine could not be started, reached or used (no dockerd, not root, ...)."""


class UsageError(ScaffoldError):
    """Command-line arguments that do not fit together."""

    exit_code = EXIT_USAGE


class MergeConflictError(ScaffoldError):
    """An update merged with conflicts; the merge is left in progress for the user."""

    exit_code = EXIT_CONFLICTS

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files
