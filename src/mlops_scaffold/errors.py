"""Errors a user can cause, each with the exit code the CLI returns for it.

The core raises these; ``cli.py`` is the one place that turns them into a one-line
message on stderr and an exit code. Anything else is a bug and shows a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFY_FAILED = 3
EXIT_CONFLICTS = 4


class ScaffoldError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
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


class ToolMissingError(ScaffoldError):
    """An external command the operation needs (git, make, uv) is not installed."""


class ContainerEngineError(ScaffoldError):
    """A Docker engine could not be started, reached or used (no dockerd, not root, ...)."""


class UsageError(ScaffoldError):
    """Command-line arguments that do not fit together."""

    exit_code = EXIT_USAGE


class VerificationError(ScaffoldError):
    """The generated project's verification ran and failed."""

    exit_code = EXIT_VERIFY_FAILED


class MergeConflictError(ScaffoldError):
    """An update merged with conflicts; the merge is left in progress for the user."""

    exit_code = EXIT_CONFLICTS

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files
