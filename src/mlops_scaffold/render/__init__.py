"""Render the Copier template into a directory. The only package that imports copier.

Non-interactive renders (``new --defaults``, ``update``, plans) use the built-in engine
(:mod:`.engine`), which implements the Copier 9.19 semantics the template uses and is
kept byte-identical to ``copier copy`` by tests/unit/test_render_equivalence.py.
Interactive renders ask the questions with Copier's prompts (:mod:`.interactive`, which
imports copier lazily: it costs ~0.5 s and ``--help`` must stay instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..resources import template_dir

ANSWERS_FILE = ".copier-answers.yml"

__all__ = ["ANSWERS_FILE", "component_overlays", "render", "template_questions"]


def template_questions(template: Path | None = None) -> dict[str, dict[str, Any]]:
    """Return the template's questions (``copier.yml`` keys not starting with ``_``)."""
    from .config import load_config

    return load_config(template or template_dir()).questions


def render(
    answers: dict[str, Any],
    destination: Path,
    *,
    interactive: bool = False,
    template: Path | None = None,
) -> None:
    """Render the template with ``answers`` into ``destination`` (created, must be empty).

    Non-interactive renders take every answer from ``answers`` (the template's defaults
    for the others); interactive ones ask each question on the terminal with the stack's
    value as the default. Either way the template directory is rendered as it is on disk
    (a git checkout's tags or uncommitted state do not matter) and the answers file
    records it as ``_src_path``.
    """
    source = template or template_dir()
    if interactive:
        from .interactive import render_interactively

        render_interactively(answers, destination, source)
        return
    from .engine import render_template

    render_template(source, answers, destination, component_overlays(source))


def component_overlays(template: Path) -> dict[str, Path]:
    """Template path -> its source in the owning component's folder, for every owned file.

    A template without a catalogue (a plain Copier template, as the update tests build)
    has none.
    """
    from ..catalogue import FILES_DIR, catalogue, components_dir

    root = components_dir(template)
    if not root.is_dir():
        return {}
    return {
        path: root / slot / name / FILES_DIR / path
        for slot, name, path in catalogue(template).owned_paths()
    }
