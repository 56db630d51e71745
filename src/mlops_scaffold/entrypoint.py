"""The ``mlops-scaffold`` console script: answer help and version without importing Typer.

Importing Typer costs more than everything ``--help`` has to say, so the few invocations
that only print help (``--help``, no arguments, ``COMMAND --help``) or the version are
answered from :mod:`.help_text`, Typer's own output captured by
scripts/generate_help_text.py (tests/unit/test_entrypoint.py keeps it equal to what
Typer prints). Only where Typer would print exactly that text: the program is called
``mlops-scaffold``, the terminal is at least 80 columns wide (Typer wraps narrower ones)
and no shell completion is requested. Everything else goes to :func:`.cli.main`, with
the garbage collector tuned for a short process (about a fifth of a ``new``).
"""

from __future__ import annotations

import gc
import os
import sys

PROG_NAME = "mlops-scaffold"
# Typer (click) wraps help at min(terminal width, 80) - 2 columns.
_FULL_WIDTH = 80


def main() -> object:
    """Entry point of the ``mlops-scaffold`` console script."""
    answer = fast_answer(sys.argv)
    if answer is None:
        # A short run that imports a lot of long-lived objects (Typer, pydantic, Jinja):
        # collect young garbage less often than every 700 allocations.
        gc.set_threshold(100_000, 20, 20)
        from .cli import main as cli_main

        try:
            return cli_main()
        finally:
            # Whatever was imported lives until the process ends: spare the collector a
            # walk over all of it during interpreter shutdown (a fifth of a `new`).
            gc.freeze()
    stream, code, text = answer
    out = sys.stdout if stream == 1 else sys.stderr
    out.write(text)
    out.flush()
    raise SystemExit(code)


def fast_answer(argv: list[str]) -> tuple[int, int, str] | None:
    """(stream 1|2, exit code, text) Typer would give for ``argv``, if known; else ``None``."""
    if os.path.basename(argv[0]) != PROG_NAME or "_MLOPS_SCAFFOLD_COMPLETE" in os.environ:
        return None
    args = tuple(argv[1:])
    if args == ("--version",):
        from . import __version__

        return 1, 0, f"{PROG_NAME} {__version__}\n"
    if terminal_columns() < _FULL_WIDTH:
        return None
    from .help_text import HELP

    return HELP.get(args)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (what click wraps help to), without shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = _FULL_WIDTH
        columns = columns or _FULL_WIDTH
    return columns
