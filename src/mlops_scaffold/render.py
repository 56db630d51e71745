"""Render Copier answers into a directory. The only module that imports copier.

Copier is imported inside the functions: it costs ~0.5 s and ``--help`` must stay instant.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .errors import RenderError
from .resources import template_dir

ANSWERS_FILE = ".copier-answers.yml"


def template_questions(template: Path | None = None) -> dict[str, dict[str, Any]]:
    """Return the template's questions (``copier.yml`` keys not starting with ``_``)."""
    config_path = (template or template_dir()) / "copier.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    return {key: value for key, value in config.items() if not key.startswith("_")}


def render(
    answers: dict[str, Any],
    destination: Path,
    *,
    interactive: bool = False,
    template: Path | None = None,
) -> None:
    """Render the template with ``answers`` into ``destination`` (created, must be empty).

    Non-interactive renders take every answer from ``answers``; interactive ones ask each
    question on the terminal with the stack's value as the default. The template is copied
    to a scratch directory first so a git checkout's tags or uncommitted state never
    change what is rendered.
    """
    import copier
    from copier.errors import CopierError

    source = template or template_dir()
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-template-") as scratch:
        snapshot = Path(scratch) / "template"
        shutil.copytree(source, snapshot, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        try:
            copier.run_copy(
                str(snapshot),
                destination,
                data=None if interactive else answers,
                user_defaults=answers if interactive else None,
                defaults=not interactive,
                overwrite=True,
                quiet=True,
                unsafe=True,
                skip_tasks=True,
                cleanup_on_error=False,
            )
        except (CopierError, ValueError) as exc:
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise RenderError(f"template rejected the answers: {first_line}") from None
        except KeyboardInterrupt:
            raise RenderError("interrupted while answering the template's questions") from None
    _record_source(destination / ANSWERS_FILE, source)


def _record_source(answers_path: Path, source: Path) -> None:
    """Point ``_src_path`` at the real template rather than the scratch copy."""
    if not answers_path.is_file():
        return
    lines = answers_path.read_text(encoding="utf-8").splitlines(keepends=True)
    rewritten = [
        f"_src_path: {source.resolve()}\n" if line.startswith("_src_path:") else line
        for line in lines
    ]
    answers_path.write_text("".join(rewritten), encoding="utf-8")


def read_answers(project: Path) -> dict[str, Any]:
    """Read a generated project's recorded answers (empty dict when the file is missing)."""
    path = project / ANSWERS_FILE
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}
