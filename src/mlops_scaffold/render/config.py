"""Read a Copier template's ``copier.yml``: settings and questions, as Copier 9.19 reads them.

Copier merges the YAML documents of the file (later ones win), flattens ``!include`` tags
(glob patterns relative to the template root), concatenates the list settings
(``_exclude`` and friends) over all documents, and turns a question given as a bare
value into ``{"default": value}``. Settings Copier knows but the built-in renderer does
not implement are refused here with the setting's name, so a template that starts using
one fails loudly instead of rendering differently from ``copier copy``.
"""

from __future__ import annotations

import re
from collections import ChainMap, defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import RenderError

#: The Copier release whose semantics the renderer implements.
COPIER_SEMANTICS = (9, 19, 1)

# Settings that change nothing in a non-interactive, quiet copy into an empty directory
# without tasks, which is the only thing the renderer does: messages are not printed
# (quiet), tasks are skipped (mlops-scaffold never runs them), migrations belong to
# `copier update`, and skip_if_exists only matters when the destination has the file.
_NO_EFFECT = frozenset(
    {
        "message_before_copy",
        "message_after_copy",
        "message_before_update",
        "message_after_update",
        "tasks",
        "migrations",
        "skip_if_exists",
    }
)
_IMPLEMENTED = frozenset(
    {
        "answers_file",
        "envops",
        "exclude",
        "min_copier_version",
        "secret_questions",
        "subdirectory",
        "templates_suffix",
    }
)
# Copier settings with an effect the renderer does not reproduce.
_NOT_IMPLEMENTED = frozenset({"external_data", "jinja_extensions", "preserve_symlinks"})
# Question keys: those that only shape the interactive prompt are accepted and ignored.
_QUESTION_KEYS = frozenset(
    {
        "type",
        "default",
        "choices",
        "validator",
        "when",
        "secret",
        "help",
        "placeholder",
        "qmark",
        "multiline",
        "multiselect",
        "ask",
    }
)
_LIST_SETTINGS = ("_exclude", "_jinja_extensions", "_secret_questions", "_skip_if_exists")


@dataclass(frozen=True)
class TemplateConfig:
    """The settings (keys without their ``_``) and questions of a template, in file order."""

    root: Path
    settings: dict[str, Any]
    questions: dict[str, dict[str, Any]]

    @property
    def subdirectory(self) -> str:
        """The ``_subdirectory`` setting (a template string), ``""`` when absent."""
        return str(self.settings.get("subdirectory", ""))

    @property
    def templates_suffix(self) -> str:
        """Suffix of the files rendered with Jinja (``.jinja`` by default)."""
        suffix = self.settings.get("templates_suffix")
        return ".jinja" if suffix is None else str(suffix)

    @property
    def answers_file(self) -> str:
        """Relative path of the answers file (a template string)."""
        return str(self.settings.get("answers_file", ".copier-answers.yml"))

    @property
    def envops(self) -> dict[str, Any]:
        """Jinja environment options, with Copier's ``keep_trailing_newline`` default."""
        envops = dict(self.settings.get("envops") or {})
        envops.setdefault("keep_trailing_newline", True)
        return envops

    @property
    def exclude(self) -> tuple[str, ...]:
        """Exclude patterns (templates); Copier's defaults only without a subdirectory."""
        if "exclude" in self.settings:
            return tuple(self.settings["exclude"])
        if PurePosixPath(self.subdirectory) == PurePosixPath():
            return DEFAULT_EXCLUDE
        return ()

    @property
    def secret_questions(self) -> frozenset[str]:
        """Questions kept out of the answers file."""
        names = set(self.settings.get("secret_questions", []))
        names.update(name for name, spec in self.questions.items() if spec.get("secret"))
        return frozenset(names)


DEFAULT_EXCLUDE: tuple[str, ...] = (
    "copier.yaml",
    "copier.yml",
    "~*",
    "*.py[co]",
    "__pycache__",
    ".git",
    ".DS_Store",
    ".svn",
)


def load_config(root: Path) -> TemplateConfig:
    """Read the template's ``copier.yml`` (or ``copier.yaml``) and check what it uses."""
    candidates = [
        path
        for path in root.glob("copier.*")
        if path.is_file() and re.match(r"\.ya?ml", path.suffix, re.IGNORECASE)
    ]
    if len(candidates) > 1:
        names = ", ".join(sorted(path.name for path in candidates))
        raise RenderError(f"{root}: more than one Copier config file ({names})")
    raw = _load_documents(candidates[0]) if candidates else {}
    settings: dict[str, Any] = {}
    questions: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            settings[key[1:]] = value
        else:
            questions[key] = value if isinstance(value, dict) else {"default": value}
    config = TemplateConfig(root, settings, questions)
    _check_supported(config)
    return config


def _load_documents(path: Path) -> dict[str, Any]:
    """Merge the file's YAML documents the way Copier does (later documents win)."""

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        """A private safe loader (libyaml's when available), so ``!include`` stays local."""

    template_root = path.parent.resolve()

    def include(loader: Loader, node: yaml.Node) -> list[Any]:
        if not isinstance(node, yaml.ScalarNode):
            raise RenderError(f"{path}: !include takes a path pattern")
        pattern = str(loader.construct_scalar(node))
        if PurePosixPath(pattern).is_absolute():
            raise RenderError(f"{path}: !include {pattern}: the path must be relative")
        documents: list[Any] = []
        for included in template_root.glob(pattern):
            resolved = included.resolve()
            if not resolved.is_relative_to(template_root):
                raise RenderError(f"{path}: !include {pattern}: outside the template")
            documents.extend(_flatten(yaml.load_all(resolved.read_bytes(), Loader=Loader)))
        return documents

    Loader.add_constructor("!include", include)
    try:
        documents = _flatten(yaml.load_all(path.read_bytes(), Loader=Loader))
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: invalid YAML ({exc})") from None
    merged: defaultdict[str, list[Any]] = defaultdict(list)
    for option in _LIST_SETTINGS:
        for document in documents:
            if option in document:
                merged[option].extend(document[option])
    return dict(ChainMap(dict(merged), *reversed(documents)))


def _flatten(items: Any) -> list[dict[str, Any]]:
    """Copier's ``lflatten(filter(None, ...))``: drop empty documents, splice lists."""
    flat: list[dict[str, Any]] = []
    for item in items:
        if not item:
            continue
        if isinstance(item, list | tuple):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def _check_supported(config: TemplateConfig) -> None:
    where = config.root / "copier.yml"
    for key in config.settings:
        if key in _NOT_IMPLEMENTED:
            raise RenderError(
                f"{where}: _{key} is a Copier setting mlops-scaffold's renderer does not "
                "implement (supported: "
                + ", ".join(f"_{name}" for name in sorted(_IMPLEMENTED | _NO_EFFECT))
                + ")"
            )
    minimum = config.settings.get("min_copier_version")
    if minimum is not None and _version_tuple(str(minimum)) > COPIER_SEMANTICS:
        implemented = ".".join(map(str, COPIER_SEMANTICS))
        raise RenderError(
            f"{where}: _min_copier_version {minimum} is newer than the Copier semantics "
            f"mlops-scaffold's renderer implements ({implemented})"
        )
    for name, spec in config.questions.items():
        unknown = sorted(set(spec) - _QUESTION_KEYS)
        if unknown:
            raise RenderError(
                f"{where}: question {name!r} uses {', '.join(unknown)}, which mlops-scaffold's "
                f"renderer does not implement (supported: {', '.join(sorted(_QUESTION_KEYS))})"
            )
        if spec.get("secret") and "default" not in spec:
            raise RenderError(f"{where}: secret question {name!r} needs a default")


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", text.split("+")[0])[:3]
    return tuple(int(number) for number in numbers) + (0,) * (3 - len(numbers))
