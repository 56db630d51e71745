"""The component catalogue: every slot, its components and the closed settings, read from data.

One folder per component, ``templates/components/<slot>/<name>/component.yml``, describes
what the component is, the services it starts and the other slots or settings it requires
or conflicts with. ``templates/components/slots.yml`` lists the slots in question order
(help text, default) and ``templates/components/settings.yml`` the settings with a closed
set of values, whose values carry the same description and rules as a component.

The catalogue is the one list of allowed values: the stack model validates against it,
``new --dry-run`` describes components from it, :func:`check_compatibility` applies its
rules before anything is written, and the ``choices:`` of ``templates/copier.yml`` are
generated from it (``python -m mlops_scaffold.catalogue --write-copier``; a unit test
fails when they are stale).
"""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from .errors import CatalogueError, StackError
from .resources import template_dir

MANIFEST = "component.yml"
SLOTS_FILE = "slots.yml"
SETTINGS_FILE = "settings.yml"
_STRICT = ConfigDict(extra="forbid", frozen=True)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Service(BaseModel):
    """A long-running process a component adds to the stack."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    port_setting: str | None = None


class Condition(BaseModel):
    """``slot`` or ``setting`` must (``requires``) or must not (``conflicts``) be ``any_of``."""

    model_config = _STRICT

    slot: str | None = None
    setting: str | None = None
    any_of: tuple[str, ...] = Field(min_length=1)
    why: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> Condition:
        if (self.slot is None) == (self.setting is None):
            raise ValueError("give exactly one of slot or setting")
        return self

    @property
    def key(self) -> str:
        """The slot or setting this condition is about."""
        return self.slot or self.setting or ""


class EnvVar(BaseModel):
    """A variable a choice sets wherever the project runs (``.env``, Makefile, compose)."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    value: str
    tool: str = Field(min_length=1)
    why: str = Field(min_length=1)


class Choice(BaseModel):
    """One allowed value of a closed setting: a description, its rules, its contributions.

    ``offline_env`` holds the opt-outs of the choice's telemetry; the shared files
    (``.env.example``, the Makefile, compose, the README) iterate over the contributions
    of the chosen values instead of asking which component a slot holds.
    """

    model_config = _STRICT

    description: str = Field(min_length=1)
    requires: tuple[Condition, ...] = ()
    conflicts: tuple[Condition, ...] = ()
    offline_env: tuple[EnvVar, ...] = ()


class Component(Choice):
    """One allowed value of a slot: a :class:`Choice` that may start services."""

    services: tuple[Service, ...] = ()


class SlotSpec(BaseModel):
    """A slot's question: help text and default component."""

    model_config = _STRICT

    help: str = Field(min_length=1)
    default: str


class SettingSpec(SlotSpec):
    """A closed setting's question and its allowed values."""

    values: dict[str, Choice] = Field(min_length=1)


class Catalogue(BaseModel):
    """Every slot with its components and every closed setting with its values."""

    model_config = _STRICT

    slots: dict[str, SlotSpec]
    components: dict[str, dict[str, Component]]
    settings: dict[str, SettingSpec]

    def choices(self, key: str) -> tuple[str, ...]:
        """Return the allowed values of a slot or closed setting, in question order."""
        if key in self.components:
            return tuple(self.components[key])
        return tuple(self.settings[key].values)

    def choice(self, key: str, value: str) -> Choice:
        """Return the component or setting value ``key=value``."""
        if key in self.components:
            return self.components[key][value]
        return self.settings[key].values[value]

    def all_keys(self) -> tuple[str, ...]:
        """Return every slot, then every closed setting, in question order."""
        return (*self.slots, *self.settings)


def _order(name: str) -> tuple[bool, str]:
    """Components sort by name, ``none`` (switching the slot off) last."""
    return (name == "none", name)


def _where(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def _first_problem(path: Path, exc: ValidationError, prefix: str) -> str:
    error = exc.errors()[0]
    if error["type"] == "extra_forbidden":
        problem = "unknown key"
    elif error["type"] == "missing":
        problem = "missing key"
    else:
        problem = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {prefix}{_where(error)}: {problem}{more}"


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_bytes(), Loader=_Loader)  # nosec B506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CatalogueError(f"{path}: not valid YAML{where}") from None
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read ({exc.strerror})") from None


def _validated(model: type[BaseModel], path: Path, data: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(_first_problem(path, exc, prefix)) from None


def _check_references(root: Path, catalogue: Catalogue) -> None:
    for slot, spec in catalogue.slots.items():
        if spec.default not in catalogue.components[slot]:
            raise CatalogueError(
                f"{root / SLOTS_FILE}: {slot}.default: no component folder {slot}/{spec.default}"
            )
    for key, setting in catalogue.settings.items():
        if setting.default not in setting.values:
            raise CatalogueError(
                f"{root / SETTINGS_FILE}: {key}.default: {setting.default!r} is not one of "
                f"its values ({', '.join(setting.values)})"
            )
    for key in catalogue.all_keys():
        for value in catalogue.choices(key):
            source = (
                root / key / value / MANIFEST
                if key in catalogue.components
                else root / SETTINGS_FILE
            )
            choice = catalogue.choice(key, value)
            for kind, conditions in (
                ("requires", choice.requires),
                ("conflicts", choice.conflicts),
            ):
                for number, condition in enumerate(conditions):
                    where = f"{source}: {kind}.{number}"
                    known = catalogue.components if condition.slot else catalogue.settings
                    if condition.key not in known:
                        what = "slot" if condition.slot else "closed setting"
                        raise CatalogueError(f"{where}: unknown {what} {condition.key!r}")
                    allowed = catalogue.choices(condition.key)
                    for target in condition.any_of:
                        if target not in allowed:
                            raise CatalogueError(
                                f"{where}.any_of: {condition.key} has no value {target!r} "
                                f"(allowed: {', '.join(allowed)})"
                            )


def load_catalogue(root: Path) -> Catalogue:
    """Read and validate the catalogue under ``root`` (one directory walk)."""
    slots_data = _read(root / SLOTS_FILE)
    settings_data = _read(root / SETTINGS_FILE)
    if not isinstance(slots_data, dict):
        raise CatalogueError(f"{root / SLOTS_FILE}: must map each slot to its help and default")
    if not isinstance(settings_data, dict):
        raise CatalogueError(f"{root / SETTINGS_FILE}: must map each setting to its values")
    slots = {
        str(slot): _validated(SlotSpec, root / SLOTS_FILE, spec, f"{slot}.")
        for slot, spec in slots_data.items()
    }
    settings = {
        str(key): _validated(SettingSpec, root / SETTINGS_FILE, spec, f"{key}.")
        for key, spec in settings_data.items()
    }
    found: dict[str, dict[str, Component]] = {}
    for slot_entry in os.scandir(root):  # two levels: <slot>/<name>/, not the files below
        if not slot_entry.is_dir():
            continue
        for entry in os.scandir(slot_entry.path):
            if not entry.is_dir():
                continue
            path = Path(entry.path, MANIFEST)
            if slot_entry.name not in slots:
                raise CatalogueError(
                    f"{path}: slot {slot_entry.name!r} is not in {root / SLOTS_FILE} "
                    f"(slots: {', '.join(slots)})"
                )
            try:
                data = yaml.load(path.read_bytes(), Loader=_Loader)  # nosec B506 - a SafeLoader
            except FileNotFoundError:
                raise CatalogueError(
                    f"{path}: missing (every component folder has a manifest)"
                ) from None
            except yaml.YAMLError:
                data = _read(path)  # raises the one-line error with the line number
            found.setdefault(slot_entry.name, {})[entry.name] = _validated(Component, path, data)
    for slot in slots:
        if slot not in found:
            raise CatalogueError(f"{root / slot}: slot {slot!r} has no component folder")
    components = {
        slot: {n: found[slot][n] for n in sorted(found[slot], key=_order)} for slot in slots
    }
    catalogue = Catalogue(slots=slots, components=components, settings=settings)
    _check_references(root, catalogue)
    return catalogue


def components_dir(template: Path | None = None) -> Path:
    """Return the catalogue folder of ``template`` (default: the installed template)."""
    return (template or template_dir()) / "components"


@lru_cache(maxsize=4)
def _cached(root: Path) -> Catalogue:
    return load_catalogue(root)


def catalogue(template: Path | None = None) -> Catalogue:
    """Return the catalogue of ``template`` (default: the installed one), cached."""
    return _cached(components_dir(template).resolve())


# ---- compatibility rules -----------------------------------------------------------------


class BrokenRule(NamedTuple):
    """A rule a selection breaks: whose rule, the one-line message, what would satisfy it."""

    key: str
    message: str
    other: str
    satisfying: tuple[str, ...]


def _broken(selection: dict[str, str], key: str, cat: Catalogue) -> BrokenRule | None:
    """Return the first rule of ``key``'s value that ``selection`` breaks."""
    value = selection[key]
    choice = cat.choice(key, value)
    for condition in choice.requires:
        have = selection[condition.key]
        if have not in condition.any_of:
            wanted = " or ".join(f"{condition.key}={v}" for v in condition.any_of)
            message = (
                f"{key}={value} requires {wanted} (have {condition.key}={have}: {condition.why})"
            )
            return BrokenRule(key, message, condition.key, condition.any_of)
    for condition in choice.conflicts:
        have = selection[condition.key]
        if have in condition.any_of:
            message = f"{key}={value} conflicts with {condition.key}={have} ({condition.why})"
            others = tuple(v for v in cat.choices(condition.key) if v not in condition.any_of)
            return BrokenRule(key, message, condition.key, others)
    return None


def broken_rules(selection: dict[str, str], cat: Catalogue | None = None) -> list[BrokenRule]:
    """Return every rule ``selection`` (slot and setting -> value) breaks, in question order."""
    cat = cat or catalogue()
    found = (_broken(selection, key, cat) for key in cat.all_keys())
    return [broken for broken in found if broken is not None]


def violations(selection: dict[str, str], cat: Catalogue | None = None) -> list[str]:
    """Return the one-line message of every rule ``selection`` breaks."""
    return [broken.message for broken in broken_rules(selection, cat)]


def repair(
    selection: dict[str, str], changes: dict[str, str], cat: Catalogue | None = None
) -> dict[str, str] | None:
    """Return ``changes`` plus what they need in turn, or None if that gets stuck.

    A key already in ``changes`` is never changed again, so the result keeps ``changes``.
    """
    cat = cat or catalogue()
    changes = dict(changes)
    current = {**selection, **changes}
    for _ in range(len(current) + 1):
        broken = broken_rules(current, cat)
        if not broken:
            return changes
        first = broken[0]
        if first.other in changes or not first.satisfying:
            return None
        changes[first.other] = current[first.other] = first.satisfying[0]
    return None


def check_compatibility(selection: dict[str, str], source: str) -> None:
    """Raise :class:`StackError` naming both sides and a fix if ``selection`` breaks a rule."""
    cat = catalogue()
    broken = broken_rules(selection, cat)
    if not broken:
        return
    key, message, other, satisfying = broken[0]
    fixes = [repair(selection, {other: value}, cat) for value in satisfying]
    alone = [
        {key: value}
        for value in cat.choices(key)
        if value != selection[key] and not broken_rules({**selection, key: value}, cat)
    ]
    found = [fix for fix in (*fixes, *alone) if fix is not None]
    texts = [" ".join(f"{k}={v}" for k, v in fix.items()) for fix in found]
    hint = f"; set {', or '.join(texts)}" if texts else ""
    raise StackError(f"{source}: {message}{hint}")


# ---- the Copier questions generated from the catalogue -------------------------------------

BEGIN = (
    "# ---- generated from templates/components/ by"
    " `python -m mlops_scaffold.catalogue --write-copier`"
)
END = "# ---- end of generated questions"
#: Hidden questions computed from the chosen values' manifests: ``offline_env`` (each
#: telemetry opt-out once, by name) and ``offline_tools`` (the tools they silence).
CONTRIBUTION_QUESTIONS = ("offline_env", "offline_tools")


def copier_questions(cat: Catalogue) -> str:
    """Return the slot and closed-setting questions of ``copier.yml`` as YAML text."""
    lines = [BEGIN]
    for slot, spec in cat.slots.items():
        lines += [
            f"{slot}:",
            "  type: str",
            f"  help: {spec.help}",
            f"  choices: {_flow(cat.choices(slot))}",
            f"  default: {_scalar(spec.default)}",
            "",
        ]
    for key, setting in cat.settings.items():
        lines += [
            f"{key}:",
            "  type: str",
            f"  help: {setting.help}",
            f"  choices: {_flow(tuple(setting.values))}",
            f"  default: {_scalar(setting.default)}",
            "",
        ]
    lines += _contribution_questions(cat)
    lines[-1] = END
    return "\n".join(lines) + "\n"


def _chosen_contributions(cat: Catalogue, field: str) -> str:
    """Return a Jinja expression: the ``field`` contributions of every chosen value.

    One lookup table per slot or setting whose values contribute, indexed by the answer:
    the template reads the manifests' data without naming a component.
    """
    terms = []
    for key in cat.all_keys():
        table = {
            value: [item.model_dump() for item in getattr(cat.choice(key, value), field)]
            for value in cat.choices(key)
        }
        table = {value: items for value, items in table.items() if items}
        if table:
            terms.append(f"{json.dumps(table, sort_keys=True)}.get({key}, [])")
    return "(" + " + ".join(terms or ["[]"]) + ")"


def _contribution_questions(cat: Catalogue) -> list[str]:
    """Hidden questions (never asked nor recorded) holding the chosen values' contributions."""
    chosen = _chosen_contributions(cat, "offline_env")
    hidden = dict(
        zip(
            CONTRIBUTION_QUESTIONS,
            (
                f"{{{{ {chosen} | unique(attribute='name') | list | tojson }}}}",
                f"{{{{ {chosen} | map(attribute='tool') | unique | list | tojson }}}}",
            ),
            strict=True,
        )
    )
    lines = ["# contributions of the chosen components (templates iterate over them)"]
    for name, default in hidden.items():
        lines += [
            f"{name}:",
            "  type: yaml",
            "  when: false",
            f"  default: {_scalar(default)}",
            "",
        ]
    return lines


def _scalar(value: str) -> str:
    dumped = yaml.safe_dump([value], default_flow_style=True, width=1000).strip()
    return dumped[1:-1]


def _flow(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_scalar(value) for value in values) + "]"


def copier_config_with_questions(text: str, cat: Catalogue) -> str:
    """``copier.yml`` text with its generated block replaced by the catalogue's questions."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise CatalogueError(f"copier.yml: no block between {BEGIN!r} and {END!r}")
    end = text.index("\n", end) + 1
    return text[:start] + copier_questions(cat) + text[end:]


def main(argv: list[str]) -> int:
    """``--write-copier`` rewrites copier.yml's questions; ``--check`` fails if stale."""
    if argv not in (["--write-copier"], ["--check"]):
        print("usage: python -m mlops_scaffold.catalogue --write-copier | --check", file=sys.stderr)
        return 2
    path = template_dir() / "copier.yml"
    current = path.read_text(encoding="utf-8")
    wanted = copier_config_with_questions(current, catalogue())
    if argv == ["--check"]:
        if wanted != current:
            print(f"{path}: stale; run python -m mlops_scaffold.catalogue --write-copier")
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
