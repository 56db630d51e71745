"""Stack files: loading, ``extends`` inheritance, ``--set`` overrides and validation.

A stack file names a profile and picks one component per slot plus typed settings::

    name: startup
    description: ...
    extends: startup        # optional: a built-in profile or a path to another stack file
    slots: {tracking: mlflow, ...}
    settings: {serving_port: 8000, ...}

The fields of :class:`Slots` and :class:`StackSettings` are built from the catalogue (its
slots and closed settings) plus the open settings, exactly the Copier questions of the
template; :meth:`Stack.to_answers` turns a stack into those answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .catalogue import Selection, catalogue, check_compatibility, members
from .errors import StackError, UsageError
from .resources import stacks_dir

__all__ = [
    "DataSpec",
    "Slots",
    "Stack",
    "StackSettings",
    "builtin_profiles",
    "data_spec",
    "load_reference",
    "load_stack",
    "stack_from_answers",
    "validate_stack",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


def shown(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for quoting user input in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_choice(kind: str, key: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{kind} {key!r} allows {', '.join(allowed)}; got {shown(value)}")
    return value


class _SlotsBase(BaseModel):
    """One component per slot (a list for a multiple slot); allowed: the catalogue's folders."""

    model_config = _STRICT

    @field_validator("*", mode="before")
    @classmethod
    def _known_component(cls, value: Any, info: Any) -> Any:
        slot = str(info.field_name)
        if not catalogue().is_multiple(slot):
            if not isinstance(value, str):
                return value  # the str field refuses it with its type
            return _check_choice("slot", slot, value, catalogue().choices(slot))
        return _check_members(slot, value, info.data)


def _check_members(slot: str, value: Any, chosen: dict[str, Any]) -> tuple[str, ...]:
    """Check a multiple slot's list (a text: one member); return each member once, in order.

    The value of the slot's ``implied_by`` slot may be listed and is dropped: it is
    always a member (``trackers: [mlflow, wandb]`` is ``trackers: [wandb]``).
    """
    cat = catalogue()
    spec = cat.slots[slot]
    allowed = cat.choices(slot)
    implied = str(chosen.get(spec.implied_by, "")) if spec.implied_by else ""
    spelled = ", ".join(allowed) or "no values"
    if implied:
        spelled += f" (and {implied}, the {spec.implied_by} slot's, always on)"
    if isinstance(value, str):
        value = [value]  # one member
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"slot {slot!r} takes a list of {spelled}; got {shown(value)}")
    for item in value:
        if item not in allowed and item != implied:
            raise ValueError(f"slot {slot!r} allows {spelled}; got {shown(item)}")
    return tuple(v for v in allowed if v in value)


class _SettingsBase(BaseModel):
    """Typed settings: the catalogue's closed settings, then ports and region."""

    model_config = _STRICT

    @field_validator("*")
    @classmethod
    def _known_choice(cls, value: Any, info: Any) -> Any:
        key = str(info.field_name)
        closed = catalogue().settings.get(key)
        if closed is None:
            return value
        return _check_choice("setting", key, value, tuple(closed.values))


#: Settings that take any value of their type (the closed ones are the catalogue's).
_OPEN_SETTINGS: dict[str, Any] = {
    "aws_region": (str, Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")),
    "mlflow_port": (int, Field(default=5000, ge=1024, le=65535, strict=True)),
    "serving_port": (int, Field(default=8000, ge=1024, le=65535, strict=True)),
    "prometheus_port": (int, Field(default=9090, ge=1024, le=65535, strict=True)),
    "grafana_port": (int, Field(default=3000, ge=1024, le=65535, strict=True)),
    "airflow_port": (int, Field(default=8080, ge=1024, le=65535, strict=True)),
}


def _catalogue_models() -> tuple[type[_SlotsBase], type[_SettingsBase]]:
    """Build the slot and settings models from the catalogue: its folders are the only list.

    A slot of ``slots.yml`` is a required field of ``Slots``; a closed setting of
    ``settings.yml`` is a text field of ``StackSettings`` with the catalogue's default,
    placed before the open settings. A new slot or setting touches no Python code.
    """
    cat = catalogue()
    slots: dict[str, Any] = {
        slot: (tuple[str, ...], spec.default) if spec.multiple else (str, ...)
        for slot, spec in cat.slots.items()
    }
    closed: dict[str, Any] = {key: (str, spec.default) for key, spec in cat.settings.items()}
    slots_model = create_model(
        "Slots", __base__=_SlotsBase, __module__=__name__, __doc__=_SlotsBase.__doc__, **slots
    )
    settings_model = create_model(
        "StackSettings",
        __base__=_SettingsBase,
        __module__=__name__,
        __doc__=_SettingsBase.__doc__,
        **closed,
        **_OPEN_SETTINGS,
    )
    return slots_model, settings_model


if TYPE_CHECKING:
    Slots = _SlotsBase
    StackSettings = _SettingsBase
else:
    Slots, StackSettings = _catalogue_models()


TASKS = ("classification", "regression")


class DataSpec(BaseModel):
    """The user's own table (``data:`` of a stack file, or ``new --data FILE --target ...``).

    ``file`` is a CSV or Parquet path; in a stack file a relative path is resolved
    against the file that names it. ``entity``, ``timestamp`` and ``task`` are inferred
    when left out.
    """

    model_config = _STRICT

    file: str = Field(min_length=1)
    target: str = Field(min_length=1)
    entity: str | None = Field(default=None, min_length=1)
    timestamp: str | None = Field(default=None, min_length=1)
    task: Literal["classification", "regression"] | None = None


class Stack(BaseModel):
    """A fully resolved stack: what ``new`` renders."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str
    extends: str | None = None
    slots: Slots
    settings: StackSettings = Field(default_factory=StackSettings)
    data: DataSpec | None = None

    @model_validator(mode="after")
    def _distinct_ports(self) -> Stack:
        """Refuse two services of this stack on one port, naming both settings."""
        settings = self.settings.model_dump()
        owners: dict[int, tuple[str, str]] = {}
        for slot, value in self.components():
            for service in catalogue().components[slot][value].services:
                if service.port_setting is None:
                    continue
                port = settings[service.port_setting]
                other = owners.setdefault(port, (service.port_setting, service.name))
                if other[0] != service.port_setting:
                    raise ValueError(
                        f"settings.{other[0]} and settings.{service.port_setting} are both "
                        f"{port}; services {other[1]} and {service.name} need their own ports"
                    )
        return self

    def components(self) -> list[tuple[str, str]]:
        """Every chosen ``(slot, component)``: each member of a multiple slot, in order."""
        return [
            (slot, value)
            for slot, chosen in self.slots.model_dump().items()
            for value in members(chosen)
        ]

    def selection(self) -> Selection:
        """Every slot and closed setting with its value: what compatibility rules look at."""
        settings = self.settings.model_dump()
        closed = {key: str(settings[key]) for key in catalogue().settings}
        return {**self.slots.model_dump(), **closed}

    def to_answers(self) -> dict[str, Any]:
        """Return the Copier answers this stack stands for (slots, settings and profile).

        A multiple slot's answer is a list (Copier's multiselect answer).
        """
        return {
            "profile": self.name,
            **self.slots.model_dump(mode="json"),
            **self.settings.model_dump(),
        }

    def to_yaml(self) -> str:
        """Serialise the resolved stack (``extends`` already applied) as YAML."""
        data = self.model_dump(exclude_none=True, mode="json")
        return yaml.safe_dump(data, sort_keys=False)


SLOT_KEYS: tuple[str, ...] = tuple(Slots.model_fields)
SETTING_KEYS: tuple[str, ...] = tuple(StackSettings.model_fields)


MAX_STACK_BYTES = 64 * 1024
"""Largest stack file read; the built-in ones are under 2 KB."""
MAX_YAML_DEPTH = 16
"""Deepest nesting of mappings and lists a stack file may have (stacks need 2)."""
MAX_EXTENDS_DEPTH = 16
"""Longest ``extends`` chain, counting the file given."""
PROFILE_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a stack file may not contain (duplicate keys, aliases, deep nesting)."""


class _StackLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys, aliases and deep nesting.

    Aliases are refused outright: a stack file needs none, and they are how a few
    lines of YAML expand into billions of nodes ("billion laughs").
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(None, None, "aliases (*name)", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _Refused(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise _Refused(
                    None, None, "a key must be a plain value", key_node.start_mark
                ) from None
            if duplicate:
                raise _Refused(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def parse_stack_text(data: bytes, source: str) -> dict[str, Any]:
    """Decode and parse the bytes of a stack file into a mapping, or raise :class:`StackError`.

    Refuses files larger than :data:`MAX_STACK_BYTES`, text that is not UTF-8,
    invalid YAML, duplicate keys, aliases, nesting deeper than :data:`MAX_YAML_DEPTH`
    and a top level that is not a mapping.
    """
    if len(data) > MAX_STACK_BYTES:
        raise StackError(
            f"{source}: {len(data)} bytes is too large for a stack file "
            f"(at most {MAX_STACK_BYTES} bytes)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackError(
            f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        loaded = yaml.load(text, Loader=_StackLoader)  # nosec B506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        kind = "not allowed in a stack file" if isinstance(exc, _Refused) else "not valid YAML"
        raise StackError(f"{source}: {kind}: {_yaml_problem(exc)}") from None
    except RecursionError:  # pragma: no cover - MAX_YAML_DEPTH stops nesting long before
        raise StackError(f"{source}: nested too deeply") from None
    if not isinstance(loaded, dict):
        raise StackError(f"{source}: a stack file must be a mapping with name, description, slots")
    return loaded


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with the tool, sorted."""
    return sorted(path.stem for path in stacks_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        if path.exists() and not path.is_file():
            raise StackError(f"{path}: not a regular file")
        with path.open("rb") as stream:
            data = stream.read(MAX_STACK_BYTES + 1)
    except FileNotFoundError:
        raise StackError(f"{path}: stack file not found") from None
    except OSError as exc:
        raise StackError(f"{path}: cannot read stack file ({exc.strerror})") from None
    except ValueError as exc:  # an embedded NUL byte in the path
        raise StackError(f"{path}: invalid path ({exc})") from None
    return parse_stack_text(data, str(path))


def _profile_path(name: str) -> Path:
    available = builtin_profiles()
    if not PROFILE_NAME.fullmatch(name) or name not in available:
        hint = "; a stack file goes with --stack FILE" if not PROFILE_NAME.fullmatch(name) else ""
        raise StackError(
            f"unknown profile {name!r}; available profiles: {', '.join(available)}{hint}"
        )
    return stacks_dir() / f"{name}.yaml"


def _resolve_parent(reference: str, child: Path) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        try:
            candidate = (child.parent / reference).resolve()
            is_file = candidate.is_file()
        except OSError as exc:
            raise StackError(
                f"{child}: extends: {shown(reference)} is not a usable path ({exc.strerror})"
            ) from None
        except (ValueError, RuntimeError) as exc:  # a NUL byte; a symlink loop
            raise StackError(f"{child}: extends: {shown(reference)}: {exc}") from None
        if not is_file:
            raise StackError(f"{child}: extends: {shown(reference)} is not a file")
        return candidate
    if reference not in builtin_profiles():
        allowed = ", ".join(builtin_profiles())
        raise StackError(
            f"{child}: extends: unknown profile {shown(reference)}; available: {allowed}"
        )
    return _profile_path(reference)


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _load_raw(path: Path) -> dict[str, Any]:
    """Read ``path`` and its ``extends`` chain (iteratively) and merge them, root first."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    try:
        current: Path | None = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise StackError(f"{path}: cannot read stack file ({exc})") from None
    while current is not None:
        seen = [item for item, _ in chain]
        if current in seen:
            names = " -> ".join(p.name for p in (*seen, current))
            raise StackError(f"{path}: extends forms a cycle ({names})")
        if len(chain) >= MAX_EXTENDS_DEPTH:
            raise StackError(f"{path}: extends chain longer than {MAX_EXTENDS_DEPTH} stack files")
        raw = _read_yaml(current)
        for section in ("slots", "settings", "data"):
            if section in raw and not isinstance(raw[section], dict):
                raise StackError(f"{current}: {section} must be a mapping")
        file = raw.get("data", {}).get("file")
        if isinstance(file, str) and file and not Path(file).is_absolute():
            raw["data"] = {**raw["data"], "file": os.path.normpath(current.parent / file)}
        chain.append((current, raw))
        parent_ref = raw.get("extends")
        if parent_ref is None:
            current = None
        elif not isinstance(parent_ref, str):
            raise StackError(f"{current}: extends must be a profile name or a file path")
        else:
            current = _resolve_parent(parent_ref, current)
    merged: dict[str, Any] = {}
    for _, raw in reversed(chain):
        merged = _merge(merged, raw)
    return merged


def _typed_value(key: str, value: str) -> Any:
    """Convert a ``--set`` value to the setting's type; pydantic reports what does not fit."""
    if StackSettings.model_fields[key].annotation is int and INTEGER.fullmatch(value):
        return int(value)
    return value


INTEGER = re.compile(r"[0-9]{1,4000}")  # int() refuses more than 4300 digits


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``KEY=VALUE`` from ``--set`` into (section, key, typed value).

    Values are never evaluated as YAML: a slot or string setting takes the text as it
    is (stripped), an integer setting takes decimal digits; anything else is left as
    text for validation to refuse with the allowed values. A multiple slot takes a
    comma-separated list (``--set trackers=wandb,tensorboard``; ``--set trackers=``: none).
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise StackError(f"--set {shown(text)}: expected KEY=VALUE, e.g. --set tuning=none")
    if key in SLOT_KEYS:
        if catalogue().is_multiple(key):  # a,b,c; empty: none
            return "slots", key, [item.strip() for item in value.split(",") if item.strip()]
        return "slots", key, value.strip()
    if key in SETTING_KEYS:
        return "settings", key, _typed_value(key, value.strip())
    allowed = ", ".join((*SLOT_KEYS, *SETTING_KEYS))
    raise StackError(f"--set {shown(text)}: unknown key {shown(key)}; allowed keys: {allowed}")


def _format_validation_error(
    source: str, exc: ValidationError, name_key: Callable[[tuple[Any, ...]], str]
) -> str:
    missing: list[str] = []
    problems: list[str] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        location = name_key(loc)
        if error["type"] == "extra_forbidden":
            section = str(loc[0]) if len(loc) > 1 else None
            allowed = {
                "slots": SLOT_KEYS,
                "settings": SETTING_KEYS,
                "data": tuple(DataSpec.model_fields),
            }.get(section or "", tuple(Stack.model_fields))
            problems.append(f"unknown key {shown(location)} (allowed: {', '.join(allowed)})")
        elif error["type"] == "missing":
            missing.append(f"missing key {location!r}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            if "; got " not in message and isinstance(value, str | int | float | bool):
                message += f"; got {shown(value)}"
            problems.append(f"{location}: {message}" if loc else message)
    if len(problems) > MAX_PROBLEMS:
        hidden = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"and {hidden} more problem{'s' * (hidden > 1)}"]
    # Every missing key is named (the schema bounds them); other problems are capped.
    return f"{source}: " + "; ".join(missing + problems)


MAX_PROBLEMS = 3
"""Problems of a stack reported in its one-line message; the rest are counted."""


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


#: ``serving`` values of earlier releases, which named where the app runs: now a
#: ``serving_platform`` (``serving`` names the application).
RENAMED_SERVING = {"kserve": "kserve", "seldon": "seldon", "fastapi-deployment": "deployment"}
#: The platform an earlier ``serving: fastapi`` ran on, by ``deploy``.
PLATFORM_OF_DEPLOY = {"kubernetes": "deployment", "aws-cdk": "sagemaker"}
DEFAULT_PLATFORM = "compose"
DEFAULT_SERVING = "fastapi"


def _refuse_old_spelling(raw: dict[str, Any], source: str) -> None:
    """Refuse ``serving=kserve|seldon|fastapi-deployment`` naming the new spelling."""
    slots = raw.get("slots")
    old = slots.get("serving") if isinstance(slots, dict) else None
    if isinstance(old, str) and old in RENAMED_SERVING:
        raise StackError(
            f"{source}: serving={old} is now serving_platform={RENAMED_SERVING[old]} "
            f"(serving names the application: {DEFAULT_SERVING})"
        )


def migrate_answers(answers: dict[str, Any]) -> dict[str, Any]:
    """Return recorded answers of an earlier release in today's spelling (others unchanged).

    Earlier projects recorded where the app runs as ``serving`` (``kserve``, ``seldon``,
    ``fastapi-deployment``) and no ``serving_platform``: a renamed value becomes
    ``serving: fastapi`` with that platform; ``serving: fastapi`` ran as the plain
    Deployment on Kubernetes, behind SageMaker's contract with aws-cdk, else on compose.
    """
    if "serving_platform" in answers:
        return answers
    serving = answers.get("serving")
    if serving in RENAMED_SERVING:
        platform = RENAMED_SERVING[serving]
    elif serving == DEFAULT_SERVING:
        platform = PLATFORM_OF_DEPLOY.get(str(answers.get("deploy")), DEFAULT_PLATFORM)
    else:
        return answers  # not an earlier spelling: validation names what is wrong
    return {**answers, "serving": DEFAULT_SERVING, "serving_platform": platform}


def validate_stack(
    raw: dict[str, Any],
    source: str,
    name_key: Callable[[tuple[Any, ...]], str] = _dotted,
) -> Stack:
    """Validate a raw (already merged) stack mapping; errors name ``source`` and the key.

    ``name_key`` turns a pydantic location such as ``("settings", "serving_port")`` into
    the key's name as the user wrote it (dotted for stack files). Then apply the
    catalogue's compatibility rules: a refused combination raises :class:`StackError`
    naming both sides and a fix, before anything is written. A ``serving`` value of an
    earlier release is refused with its new spelling.
    """
    _refuse_old_spelling(raw, source)
    try:
        stack = Stack.model_validate(raw)
    except ValidationError as exc:
        raise StackError(_format_validation_error(source, exc, name_key)) from None
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
        source += " with --set " + " ".join(shown(text) for text in overrides)
    return validate_stack(raw, source)


def load_reference(reference: str) -> Stack:
    """Load ``PROFILE`` or ``FILE`` as given to ``show`` (a path if it exists or looks like one)."""
    candidate = Path(reference)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        return load_stack(stack_file=candidate)
    return load_stack(profile=reference)


def data_spec(
    stack: Stack,
    file: str | None = None,
    target: str | None = None,
    entity: str | None = None,
    timestamp: str | None = None,
    task: str | None = None,
) -> DataSpec | None:
    """Return the stack's ``data`` with each given option (``--data``...) replacing its key.

    Raises :class:`UsageError` for a role without a file, a file without a target and a
    task other than classification or regression.
    """
    options = {
        "file": file,
        "target": target,
        "entity": entity,
        "timestamp": timestamp,
        "task": task,
    }
    given = {key: value for key, value in options.items() if value is not None}
    for key, value in given.items():
        if not value.strip():
            raise UsageError(f"--{'data' if key == 'file' else key} needs a value")
    if task is not None and task not in TASKS:
        raise UsageError(f"--task {shown(task)}: allowed tasks are {', '.join(TASKS)}")
    if stack.data is None:
        if not given:
            return None
        if file is None:
            raise UsageError(
                "--target, --entity, --timestamp and --task go with --data FILE "
                "(or a data: mapping in the stack file)"
            )
        if target is None:
            raise UsageError("--data needs --target COLUMN: the column to predict")
        return DataSpec.model_validate(given)
    return stack.data.model_copy(update=given)


def _answers_key(loc: tuple[Any, ...]) -> str:
    if not loc:
        return ""
    if loc == ("name",):
        return "profile"
    return str(loc[-1]) if loc[0] in ("slots", "settings") else _dotted(loc)


def stack_from_answers(
    answers: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> Stack:
    """Rebuild the stack recorded in a project's Copier answers, with overrides applied.

    Errors name the answers file and the key as it is written there (``serving_port``,
    ``profile``), so a hand-edited answers file is refused with one line. Answers of an
    earlier release are read in today's spelling (:func:`migrate_answers`).
    """
    if not isinstance(answers, dict):
        raise StackError(f"{ANSWERS_SOURCE}: must be a mapping of answers")
    answers = migrate_answers(answers)
    profile = answers.get("profile", "custom")
    raw: dict[str, Any] = {
        "name": profile,
        "description": f"recorded stack of profile {profile}",
        "slots": {key: answers[key] for key in SLOT_KEYS if key in answers},
        "settings": {key: answers[key] for key in SETTING_KEYS if key in answers},
    }
    for text in overrides:
        section, key, value = parse_override(text)
        raw = _merge(raw, {section: {key: value}})
    source = ANSWERS_SOURCE
    if overrides:
        source += " with --set " + " ".join(shown(text) for text in overrides)
    return validate_stack(raw, source, _answers_key)


ANSWERS_SOURCE = ".copier-answers.yml"
