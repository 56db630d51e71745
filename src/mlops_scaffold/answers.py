"""The answers a project is rendered with, assembled in one place.

A new project's answers are its stack's (slots, settings, profile) plus its name and the
scaffold version; an update's are the recorded answers (checked: they are user-editable
text that lands in TOML, YAML and Markdown), the target stack (the recorded one with
``--set`` overrides, or another ``--profile``) and the installed version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ProjectError
from .render import ANSWERS_FILE
from .stacks import Stack, load_stack, stack_from_answers

__all__ = ["CONTROL_CHARACTERS", "project_answers", "read_recorded_answers", "update_answers"]

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
SOURCE_NAME = re.compile(r"[^/\\\x00-\x1f\x7f]+")
TASKS = ("binary", "multiclass", "regression")


def project_answers(stack: Stack, destination: Path) -> dict[str, Any]:
    """Copier answers for rendering ``stack`` into ``destination``."""
    return {
        **stack.to_answers(),
        "project_name": destination.name,
        "scaffold_version": __version__,
    }


def read_recorded_answers(project: Path) -> dict[str, Any]:
    """Read and check a project's recorded answers; one-line ProjectError when unusable.

    The free-text answers must be text on one line without control characters: they are
    rendered into TOML, YAML and Markdown files, where a line break changes the structure.
    """
    import yaml

    path = project / ANSWERS_FILE
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(
            f"{path}: not UTF-8 text (byte {exc.start}); restore it "
            f"(git checkout -- {ANSWERS_FILE}) and change answers with --set"
        ) from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the answers file ({exc.strerror})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ProjectError(
            f"{path}: not valid YAML{where}; restore it (git checkout -- {ANSWERS_FILE}) "
            "and change answers with --set"
        ) from None
    if not isinstance(loaded, dict):
        raise ProjectError(
            f"{path}: must be a YAML mapping of answers (key: value), found {type(loaded).__name__}"
        )
    name = loaded.get("project_name")
    if name is not None and not (isinstance(name, str) and PROJECT_NAME.fullmatch(name)):
        raise ProjectError(
            f"{path}: project_name {str(name)!r} must start with a letter and contain only "
            "letters, digits, '-' and '_'"
        )
    description = loaded.get("description")
    if description is not None and not (
        isinstance(description, str) and not CONTROL_CHARACTERS.search(description)
    ):
        raise ProjectError(
            f"{path}: description must be text on one line without control characters "
            f"(got {description!r:.60})"
        )
    if "data_schema" in loaded:
        _check_data_schema(path, loaded["data_schema"])
    return loaded


def _check_data_schema(path: Path, schema: Any) -> None:
    """Refuse a recorded ``data_schema`` whose names could change a rendered file's structure.

    Names become Python identifiers, Feast fields and YAML keys; the source's file name
    lands in dvc.yaml and Markdown. Each must be as ``new --data`` wrote it.
    """
    fix = f"restore it (git checkout -- {ANSWERS_FILE}) or run new --data again"
    if not isinstance(schema, dict):
        raise ProjectError(f"{path}: data_schema must be a mapping; {fix}")
    features = schema.get("features")
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise ProjectError(f"{path}: data_schema.features must be a list of mappings; {fix}")
    names = {key: schema.get(key) for key in ("target", "entity", "timestamp", "feature_view")}
    names.update({f"features[{i}].name": f.get("name") for i, f in enumerate(features)})
    for key, name in names.items():
        if not (isinstance(name, str) and IDENTIFIER.fullmatch(name)):
            raise ProjectError(
                f"{path}: data_schema.{key} {str(name)!r:.60} must be a lower-case identifier "
                f"(letters, digits, '_'); {fix}"
            )
    if schema.get("task") not in TASKS:
        raise ProjectError(
            f"{path}: data_schema.task {str(schema.get('task'))!r:.30} must be one of "
            f"{', '.join(TASKS)}; {fix}"
        )
    source = schema.get("source")
    if source is not None and not (
        isinstance(source, str) and SOURCE_NAME.fullmatch(source) and source not in (".", "..")
    ):
        raise ProjectError(
            f"{path}: data_schema.source {str(source)!r:.60} must be a file name in "
            f"data/source/ (no '/', one line); {fix}"
        )


def update_answers(project: Path, overrides: Sequence[str], profile: str | None) -> dict[str, Any]:
    """Every answer to render with: the recorded ones, the stack's, the installed version."""
    recorded = read_recorded_answers(project)
    stack = _target_stack(recorded, overrides, profile)
    answers = {
        key: value
        for key, value in recorded.items()
        if isinstance(key, str) and not key.startswith("_")
    }
    answers.update(project_answers(stack, project))
    answers["project_name"] = recorded.get("project_name", project.name)
    answers["scaffold_version"] = __version__
    return answers


def _target_stack(recorded: dict[str, Any], overrides: Sequence[str], profile: str | None) -> Stack:
    if profile is not None:
        return load_stack(profile=profile, overrides=list(overrides))
    return stack_from_answers(recorded, list(overrides))
