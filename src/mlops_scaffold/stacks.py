"""Stack files: loading, ``extends`` inheritance, ``--set`` overrides and validation.

A stack file names a profile and picks one component per slot plus typed settings::

    name: startup
    description: ...
    extends: startup        # optional: a built-in profile or a path to another stack file
    slots: {tracking: mlflow, ...}
    settings: {serving_port: 8000, ...}

The fields of :class:`Slots` and :class:`StackSettings` are exactly the Copier questions
of the template; :meth:`Stack.to_answers` turns a stack into those answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .catalogue import catalogue, check_compatibility
from .errors import StackError
from .resources import stacks_dir

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _check_choice(kind: str, key: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{kind} {key!r} allows {', '.join(allowed)}; got {value!r}")
    return value


class Slots(BaseModel):
    """One component per slot; allowed values are the component folders of the catalogue."""

    model_config = _STRICT

    tracking: str
    data_versioning: str
    feature_store: str
    monitoring: str
    serving: str
    orchestration: str
    tuning: str
    deploy: str
    ci: str

    @field_validator("*")
    @classmethod
    def _known_component(cls, value: str, info: Any) -> str:
        slot = str(info.field_name)
        return _check_choice("slot", slot, value, catalogue().choices(slot))


class StackSettings(BaseModel):
    """Typed settings: backends, ports and the Python version."""

    model_config = _STRICT

    python_version: str = "3.11"
    tracking_backend: str = "sqlite"
    online_store: str = "sqlite"
    validation: str = "none"
    artifact_store: str = "local"
    data_remote: str = "local"
    aws_region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
    mlflow_port: int = Field(default=5000, ge=1024, le=65535, strict=True)
    serving_port: int = Field(default=8000, ge=1024, le=65535, strict=True)
    prometheus_port: int = Field(default=9090, ge=1024, le=65535, strict=True)
    grafana_port: int = Field(default=3000, ge=1024, le=65535, strict=True)
    airflow_port: int = Field(default=8080, ge=1024, le=65535, strict=True)

    @field_validator("*")
    @classmethod
    def _known_choice(cls, value: Any, info: Any) -> Any:
        key = str(info.field_name)
        closed = catalogue().settings.get(key)
        if closed is None:
            return value
        return _check_choice("setting", key, value, tuple(closed.values))


class Stack(BaseModel):
    """A fully resolved stack: what ``new`` renders."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str
    extends: str | None = None
    slots: Slots
    settings: StackSettings = Field(default_factory=StackSettings)

    def selection(self) -> dict[str, str]:
        """Every slot and closed setting with its value: what compatibility rules look at."""
        settings = self.settings.model_dump()
        closed = {key: str(settings[key]) for key in catalogue().settings}
        return {**self.slots.model_dump(), **closed}

    def to_answers(self) -> dict[str, Any]:
        """Return the Copier answers this stack stands for (slots, settings and profile)."""
        return {"profile": self.name, **self.slots.model_dump(), **self.settings.model_dump()}

    def to_yaml(self) -> str:
        """Serialise the resolved stack (``extends`` already applied) as YAML."""
        data = self.model_dump(exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)


SLOT_KEYS: tuple[str, ...] = tuple(Slots.model_fields)
SETTING_KEYS: tuple[str, ...] = tuple(StackSettings.model_fields)


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with the tool, sorted."""
    return sorted(path.stem for path in stacks_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackError(f"{path}: stack file not found") from None
    except OSError as exc:
        raise StackError(f"{path}: cannot read stack file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StackError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise StackError(f"{path}: a stack file must be a mapping with name, description, slots")
    return data


def _profile_path(name: str) -> Path:
    path = stacks_dir() / f"{name}.yaml"
    if not path.is_file():
        allowed = ", ".join(builtin_profiles())
        raise StackError(f"unknown profile {name!r}; available profiles: {allowed}")
    return path


def _resolve_parent(reference: str, child: Path) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        candidate = (child.parent / reference).resolve()
        if not candidate.is_file():
            raise StackError(f"{child}: extends: {reference!r} is not a file")
        return candidate
    if reference not in builtin_profiles():
        allowed = ", ".join(builtin_profiles())
        raise StackError(f"{child}: extends: unknown profile {reference!r}; available: {allowed}")
    return _profile_path(reference)


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(p.name for p in (*seen, path))
        raise StackError(f"{path}: extends forms a cycle ({chain})")
    raw = _read_yaml(path)
    for section in ("slots", "settings"):
        if section in raw and not isinstance(raw[section], dict):
            raise StackError(f"{path}: {section} must be a mapping")
    parent_ref = raw.get("extends")
    if parent_ref is None:
        return raw
    if not isinstance(parent_ref, str):
        raise StackError(f"{path}: extends must be a profile name or a file path")
    parent = _load_raw(_resolve_parent(parent_ref, path), (*seen, path))
    return _merge(parent, raw)


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``KEY=VALUE`` from ``--set`` into (section, key, typed value)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise StackError(f"--set {text!r}: expected KEY=VALUE, e.g. --set tuning=none")
    if key in SLOT_KEYS:
        return "slots", key, value.strip()
    if key in SETTING_KEYS:
        parsed = yaml.safe_load(value) if value.strip() else ""
        field_type = StackSettings.model_fields[key].annotation
        if field_type is str:
            parsed = value.strip()
        return "settings", key, parsed
    allowed = ", ".join((*SLOT_KEYS, *SETTING_KEYS))
    raise StackError(f"--set {text!r}: unknown key {key!r}; allowed keys: {allowed}")


def _format_validation_error(source: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            section = str(error["loc"][0]) if len(error["loc"]) > 1 else None
            allowed = {
                "slots": SLOT_KEYS,
                "settings": SETTING_KEYS,
                None: tuple(Stack.model_fields),
            }[section]
            problems.append(f"unknown key {location!r} (allowed: {', '.join(allowed)})")
        elif error["type"] == "missing":
            problems.append(f"missing key {location!r}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{location}: {message}")
    return f"{source}: " + "; ".join(problems)


def validate_stack(raw: dict[str, Any], source: str) -> Stack:
    """Validate a raw (already merged) stack mapping; errors name ``source`` and the key.

    Then apply the catalogue's compatibility rules: a refused combination raises
    :class:`StackError` naming both sides and a fix, before anything is written.
    """
    try:
        stack = Stack.model_validate(raw)
    except ValidationError as exc:
        raise StackError(_format_validation_error(source, exc)) from None
    check_compatibility(stack.selection(), source)
    return stack


def load_stack(
    profile: str | None = None,
    stack_file: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Stack:
    """Load a built-in profile or a stack file, apply ``extends`` and ``--set`` overrides."""
    if (profile is None) == (stack_file is None):
        raise StackError("give exactly one of --profile NAME or --stack FILE")
    path = _profile_path(profile) if profile is not None else Path(stack_file or "")
    raw = _load_raw(path)
    for text in overrides:
        section, key, value = parse_override(text)
        raw = _merge(raw, {section: {key: value}})
    source = str(path) if stack_file is not None else f"profile {profile!r} ({path.name})"
    if overrides:
        source += " with --set " + " ".join(overrides)
    return validate_stack(raw, source)


def load_reference(reference: str) -> Stack:
    """Load ``PROFILE`` or ``FILE`` as given to ``show`` (a path if it exists or looks like one)."""
    candidate = Path(reference)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        return load_stack(stack_file=candidate)
    return load_stack(profile=reference)


def stack_from_answers(
    answers: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> Stack:
    """Rebuild the stack recorded in a project's Copier answers, with overrides applied."""
    raw: dict[str, Any] = {
        "name": answers.get("profile", "custom"),
        "description": f"recorded stack of profile {answers.get('profile', 'custom')}",
        "slots": {key: answers[key] for key in SLOT_KEYS if key in answers},
        "settings": {key: answers[key] for key in SETTING_KEYS if key in answers},
    }
    for text in overrides:
        section, key, value = parse_override(text)
        raw = _merge(raw, {section: {key: value}})
    return validate_stack(raw, ".copier-answers.yml")
