"""Interactive renders: Copier asks the questions with its prompts, then renders.

Copier is imported here, inside the function: it costs ~0.5 s. The template is copied to
a scratch directory first so Copier treats it as a plain directory, as the built-in
engine does (a git checkout's tags or uncommitted state never change what is rendered);
``_src_path`` then points back at the real template. The snapshot gets every file a
component owns at its project path (a wheel may hold it in the component's folder only).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import RenderError

_ANSWERS_FILE = ".copier-answers.yml"


def render_interactively(answers: dict[str, Any], destination: Path, source: Path) -> None:
    """Ask every question (the stack's values as defaults) and render into ``destination``."""
    import copier
    from copier.errors import CopierError

    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-template-") as scratch:
        snapshot = Path(scratch) / "template"
        shutil.copytree(source, snapshot, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        _place_owned_files(snapshot)
        try:
            copier.run_copy(
                str(snapshot),
                destination,
                user_defaults=answers,
                defaults=False,
                overwrite=True,
                quiet=True,
                unsafe=True,
                skip_tasks=True,
                cleanup_on_error=False,
            )
        except (CopierError, ValueError) as exc:
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else type(exc).__name__
            raise RenderError(f"template rejected the answers: {first_line}") from None
        except KeyboardInterrupt:
            raise RenderError("interrupted while answering the template's questions") from None
    _record_source(destination / _ANSWERS_FILE, source)


def _place_owned_files(snapshot: Path) -> None:
    """Copy each owned path missing from ``project/`` from its component's folder."""
    from . import component_overlays

    for path, owner in component_overlays(snapshot).items():
        target = snapshot / "project" / path
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if owner.is_dir():
            shutil.copytree(owner, target)
        else:
            shutil.copy2(owner, target)


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
