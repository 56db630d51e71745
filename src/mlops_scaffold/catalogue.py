"""The component catalogue: every slot, its components and the closed settings, read from data.

One folder per component, ``templates/components/<slot>/<name>/component.yml``, describes
what the component is, the services it starts and the other slots or settings it requires
or conflicts with. ``templates/components/slots.yml`` lists the slots in question order
(help text, default) and ``templates/components/settings.yml`` the settings with a closed
set of values, whose values carry the same description and rules as a component.

The catalogue is the one list of allowed values: the stack model validates against it,
``new --dry-run`` describes components from it, :func:`check_compatibility` applies its
rules before anything is written, and the ``choices:`` of ``templates/copier.yml`` are
generated from it by :mod:`.template_sync` (a unit test fails when they are stale).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from .errors import CatalogueError, StackError
from .resources import template_dir

MANIFEST = "component.yml"
FILES_DIR = "files"  # a component's owned files: <slot>/<name>/files/<template path>
#: A choice's contributions to shared files: <key>/<value>/fragments/<point>.jinja, where
#: <key> is a slot or a closed setting; a shared file includes, at a point it names, the
#: fragments of the chosen values (see :mod:`.template_sync`).
FRAGMENTS_DIR = "fragments"
FRAGMENT_SUFFIX = ".jinja"
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


class Package(BaseModel):
    """A Python requirement a choice adds, pinned exactly (resolved with the base pins)."""

    model_config = _STRICT

    requirement: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9_,-]+\])?==[0-9][0-9A-Za-z.+!-]*$"
    )
    why: str = ""


class VerifyStep(BaseModel):
    """A step a choice adds to the generated ``verify`` plan (``verify/plan.py``).

    ``module.function`` of the generated ``verify`` package (``core``, ``aws``, ...) runs it
    once the steps named in ``needs`` passed; ``log`` names the process log shown when it
    fails. It takes the place of the core step it ``replaces``, or goes right
    ``before``/``after`` a step (at the end when none is given), and only when the stack
    holds ``when`` (a slot or setting value).
    """

    model_config = _STRICT

    name: str = Field(min_length=1)
    module: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    function: str = Field(pattern=r"^step_[a-z0-9_]+$")
    needs: tuple[str, ...] = ()
    log: str = ""
    replaces: str | None = None
    before: str | None = None
    after: str | None = None
    when: Condition | None = None

    @model_validator(mode="after")
    def _one_place(self) -> VerifyStep:
        if sum(anchor is not None for anchor in (self.replaces, self.before, self.after)) > 1:
            raise ValueError("give at most one of replaces, before or after")
        return self


def _inside_the_project(path: str) -> str:
    """Accept a template path below ``templates/project``: relative, POSIX, no ``.``/``..``."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r} is not a relative path below templates/project")
    return path


class Choice(BaseModel):
    """One allowed value of a closed setting: a description, its rules, its contributions.

    ``offline_env`` holds the opt-outs of the choice's telemetry, ``env_secrets`` the
    ``.env`` secrets it needs (``make secrets`` generates them), ``packages`` the
    project's extra requirements, ``serving_packages`` those of the serving image
    (the ``serve`` dependency group) and ``stages`` the pipeline stages the choice adds
    (the Kubeflow pipeline and the Airflow DAG run them), ``serving_routes`` the modules
    of the generated ``serving`` package whose router the app includes next to
    ``/predict`` (``v2``, ``sagemaker``: each defines ``create_router`` and
    ``REQUEST_MODELS``; see ``serving/routes.py``), ``serving_agents`` the modules of
    that package whose ``start()`` ``serving/routes.py`` calls on import, before the app
    is built (an APM agent configured by environment), ``tracker_modules`` the modules
    publishing every MLflow run to another experiment tracker (each defines ``log_run``;
    see ``trackers.py``) and ``verify_steps`` its steps of
    the generated ``verify`` (``verify/plan.py``); the shared files (``.env.example``, the
    Makefile, compose, the README, ``pyproject.toml``, the pipelines, the verify plan)
    iterate over the chosen values' contributions instead of asking which component a
    slot holds.
    """

    model_config = _STRICT

    description: str = Field(min_length=1)
    requires: tuple[Condition, ...] = ()
    conflicts: tuple[Condition, ...] = ()
    offline_env: tuple[EnvVar, ...] = ()
    env_secrets: tuple[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")], ...] = ()
    packages: tuple[Package, ...] = ()
    serving_packages: tuple[Package, ...] = ()
    stages: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z_]*$")], ...] = ()
    serving_routes: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    serving_agents: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    tracker_modules: tuple[Annotated[str, Field(pattern=r"^tracker_[a-z0-9_]+$")], ...] = ()
    verify_steps: tuple[VerifyStep, ...] = ()
    #: When the stack holds this (``deploy=aws-cdk`` for ``artifact_store=s3``), another
    #: choice provides what the value stands for (there: the CDK app's buckets, run on
    #: moto_server by its verify steps): the value then contributes its ``packages`` and
    #: ``serving_packages`` only, none of its files, fragments, secrets or verify steps.
    provided_by: Condition | None = None
    #: Template paths (relative to ``templates/project``, ``.jinja`` suffix included) that
    #: live in the choice's ``files/`` folder (``<key>/<value>/files/<path>``) and exist
    #: in a project only when the choice is made (see :mod:`.template_sync`).
    files: tuple[Annotated[str, AfterValidator(_inside_the_project)], ...] = ()


class Component(Choice):
    """One allowed value of a slot: a :class:`Choice` that may also start services."""

    services: tuple[Service, ...] = ()


class SlotSpec(BaseModel):
    """A slot's question: help text and default component.

    A ``multiple`` slot holds several components at once (a list in a stack file,
    ``--set key=a,b``, a multiselect question); its default is a list, empty when the
    slot may hold none. Its ``implied_by`` slot's value is always a member: a stack may
    list it, and it is dropped (the ``trackers`` slot lists ``mlflow``, the ``tracking``
    slot's component, which every run logs to anyway).
    """

    model_config = _STRICT

    help: str = Field(min_length=1)
    default: str | tuple[str, ...]
    multiple: bool = False
    implied_by: str | None = None

    @model_validator(mode="after")
    def _default_fits(self) -> SlotSpec:
        if self.multiple != isinstance(self.default, tuple):
            raise ValueError("a multiple slot's default is a list, another slot's one value")
        if self.implied_by is not None and not self.multiple:
            raise ValueError("implied_by is for a multiple slot")
        return self


class SettingSpec(SlotSpec):
    """A closed setting's question and its allowed values (one value: not ``multiple``)."""

    default: str
    values: dict[str, Choice] = Field(min_length=1)


class Catalogue(BaseModel):
    """Every slot with its components and every closed setting with its values."""

    model_config = _STRICT

    slots: dict[str, SlotSpec]
    components: dict[str, dict[str, Component]]
    settings: dict[str, SettingSpec]
    #: slot or setting -> value -> the points its fragments contribute to, sorted.
    fragments: dict[str, dict[str, tuple[str, ...]]] = {}
    #: (owner key, other key) -> every rule a value of the owner has about the other key.
    _rules_by_pair: dict[tuple[str, str], tuple[Rule, ...]] | None = PrivateAttr(default=None)

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

    def rules_of(self, key: str, value: str) -> tuple[Rule, ...]:
        """Return the rules of ``key=value``: its ``requires``, then its ``conflicts``."""
        choice = self.choice(key, value)
        return (
            *(Rule(key, value, condition, required=True) for condition in choice.requires),
            *(Rule(key, value, condition, required=False) for condition in choice.conflicts),
        )

    def rules_between(self, owner: str, other: str) -> tuple[Rule, ...]:
        """Return the rules any value of ``owner`` has about ``other`` (indexed once)."""
        if self._rules_by_pair is None:
            index: dict[tuple[str, str], list[Rule]] = {}
            for key in self.all_keys():
                for value in self.choices(key):
                    for rule in self.rules_of(key, value):
                        index.setdefault((key, rule.other), []).append(rule)
            self._rules_by_pair = {pair: tuple(rules) for pair, rules in index.items()}
        return self._rules_by_pair.get((owner, other), ())

    def is_multiple(self, key: str) -> bool:
        """Whether ``key`` is a slot holding several components at once."""
        return key in self.slots and self.slots[key].multiple

    def all_keys(self) -> tuple[str, ...]:
        """Return every slot, then every closed setting, in question order."""
        return (*self.slots, *self.settings)

    def fragment_points(self, key: str, value: str) -> tuple[str, ...]:
        """Return the points of the shared files ``key=value`` contributes fragments to."""
        return self.fragments.get(key, {}).get(value, ())

    def owned_paths(self) -> list[tuple[str, str, str]]:
        """Return ``(slot or setting, value, template path)`` of every owned path, shallow first."""
        owned = [
            (key, value, path)
            for key in self.all_keys()
            for value in self.choices(key)
            for path in self.choice(key, value).files
        ]
        return sorted(owned, key=lambda item: (item[2].count("/"), item[2]))


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


def _check_setting_defaults(root: Path, settings: dict[str, SettingSpec]) -> None:
    for key, setting in settings.items():
        if setting.default not in setting.values:
            raise CatalogueError(
                f"{root / SETTINGS_FILE}: {key}.default: {setting.default!r} is not one of "
                f"its values ({', '.join(setting.values)})"
            )


def _check_references(root: Path, catalogue: Catalogue) -> None:
    for slot, spec in catalogue.slots.items():
        for default in members(spec.default):
            if default not in catalogue.components[slot]:
                raise CatalogueError(
                    f"{root / SLOTS_FILE}: {slot}.default: no component folder {slot}/{default}"
                )
        if spec.implied_by is not None and spec.implied_by not in catalogue.slots:
            raise CatalogueError(
                f"{root / SLOTS_FILE}: {slot}.implied_by: no slot {spec.implied_by!r}"
            )
    for key in catalogue.all_keys():
        for value in catalogue.choices(key):
            source = (
                root / key / value / MANIFEST
                if key in catalogue.components
                else root / SETTINGS_FILE
            )
            choice = catalogue.choice(key, value)
            conditions = {
                **{f"requires.{n}": c for n, c in enumerate(choice.requires)},
                **{f"conflicts.{n}": c for n, c in enumerate(choice.conflicts)},
                **{
                    f"verify_steps.{n}.when": step.when
                    for n, step in enumerate(choice.verify_steps)
                    if step.when is not None
                },
                **({"provided_by": choice.provided_by} if choice.provided_by else {}),
            }
            for label, condition in conditions.items():
                where = f"{source}: {label}"
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
    _check_setting_defaults(root, settings)
    found: dict[str, dict[str, Component]] = {}
    fragments: dict[str, dict[str, tuple[str, ...]]] = {}
    for key_entry in os.scandir(root):  # two levels: <key>/<value>/, not the files below
        if not key_entry.is_dir():
            continue
        for entry in os.scandir(key_entry.path):
            if not entry.is_dir():
                continue
            points = _fragment_points(Path(entry.path))
            if points:
                fragments.setdefault(key_entry.name, {})[entry.name] = points
            if key_entry.name in settings:
                _check_setting_folder(root, settings, key_entry.name, Path(entry.path))
                continue
            path = Path(entry.path, MANIFEST)
            if key_entry.name not in slots:
                raise CatalogueError(
                    f"{path}: slot {key_entry.name!r} is not in {root / SLOTS_FILE} "
                    f"(slots: {', '.join(slots)}; closed settings: {', '.join(settings)})"
                )
            try:
                data = yaml.load(path.read_bytes(), Loader=_Loader)  # nosec B506 - a SafeLoader
            except FileNotFoundError:
                raise CatalogueError(
                    f"{path}: missing (every component folder has a manifest)"
                ) from None
            except yaml.YAMLError:
                data = _read(path)  # raises the one-line error with the line number
            found.setdefault(key_entry.name, {})[entry.name] = _validated(Component, path, data)
    for slot in slots:
        if slot not in found:
            raise CatalogueError(f"{root / slot}: slot {slot!r} has no component folder")
    components = {
        slot: {n: found[slot][n] for n in sorted(found[slot], key=_order)} for slot in slots
    }
    catalogue = Catalogue(
        slots=slots, components=components, settings=settings, fragments=fragments
    )
    _check_references(root, catalogue)
    return catalogue


def _fragment_points(folder: Path) -> tuple[str, ...]:
    """Return the points a choice's ``fragments/`` folder contributes to (none: empty)."""
    try:
        names = os.listdir(folder / FRAGMENTS_DIR)
    except FileNotFoundError:
        return ()
    points = []
    for name in sorted(names):
        point = name.removesuffix(FRAGMENT_SUFFIX)
        if point == name or not (folder / FRAGMENTS_DIR / name).is_file():
            raise CatalogueError(
                f"{folder / FRAGMENTS_DIR / name}: a fragment is a file named <point>.jinja"
            )
        points.append(point)
    return tuple(points)


def _check_setting_folder(
    root: Path, settings: dict[str, SettingSpec], key: str, folder: Path
) -> None:
    """Refuse a setting value's folder holding more than fragments/ and files/."""
    values = settings[key].values
    if folder.name not in values:
        raise CatalogueError(
            f"{folder}: {key} has no value {folder.name!r} in {root / SETTINGS_FILE} "
            f"(values: {', '.join(values)})"
        )
    extra = sorted(set(os.listdir(folder)) - {FRAGMENTS_DIR, FILES_DIR})
    if extra:
        raise CatalogueError(
            f"{folder / extra[0]}: a setting value's folder holds only {FRAGMENTS_DIR}/ "
            f"and {FILES_DIR}/ "
            f"(its description and rules are in {root / SETTINGS_FILE})"
        )


def fragment_path(key: str, value: str, point: str) -> str:
    """Return the template-root path of ``key=value``'s fragment for ``point`` (for include)."""
    return f"components/{key}/{value}/{FRAGMENTS_DIR}/{point}{FRAGMENT_SUFFIX}"


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


#: A stack's value of a slot or setting: one value, or a multiple slot's members.
Value = str | tuple[str, ...]
#: Every slot and closed setting of a stack with its value: what the rules look at.
Selection = dict[str, Value]


def members(value: Value) -> tuple[str, ...]:
    """Return the values a slot or setting holds: its one value, or a multiple slot's list."""
    return (value,) if isinstance(value, str) else tuple(value)


def spelled(key: str, value: Value) -> str:
    """Return ``key=value`` as ``--set`` spells it (members joined by commas)."""
    return f"{key}={','.join(members(value))}"


class BrokenRule(NamedTuple):
    """A rule a selection breaks: whose rule, the one-line message, what would satisfy it.

    ``value`` is the member of ``key`` whose rule it is; ``satisfying`` the values of
    ``other`` that keep it (a multiple slot's whole new list).
    """

    key: str
    message: str
    other: str
    satisfying: tuple[Value, ...]
    value: str = ""


class Rule(NamedTuple):
    """One rule of ``owner=value`` about another slot or setting.

    ``other`` must (``required``) or must not hold one of the condition's ``any_of`` (a
    multiple slot: any of its members).
    """

    owner: str
    value: str
    condition: Condition
    required: bool

    @property
    def other(self) -> str:
        """The slot or setting the rule is about."""
        return self.condition.key

    def holds(self, have: Value) -> bool:
        """Whether ``other`` holding ``have`` keeps the rule."""
        return bool(set(members(have)) & set(self.condition.any_of)) == self.required


def _broken(selection: Selection, key: str, cat: Catalogue) -> BrokenRule | None:
    """Return the first rule of ``key``'s value (each member of a multiple slot) broken."""
    for value in members(selection[key]):
        broken = _broken_by(selection, key, value, cat)
        if broken is not None:
            return broken
    return None


def _broken_by(selection: Selection, key: str, value: str, cat: Catalogue) -> BrokenRule | None:
    for rule in cat.rules_of(key, value):
        have = selection[rule.other]
        if rule.holds(have):
            continue
        condition = rule.condition
        satisfying: tuple[Value, ...]
        if rule.required:
            wanted = " or ".join(f"{condition.key}={v}" for v in condition.any_of)
            message = (
                f"{key}={value} requires {wanted} "
                f"(have {spelled(condition.key, have)}: {condition.why})"
            )
            satisfying = (
                tuple((*members(have), v) for v in condition.any_of)
                if cat.is_multiple(condition.key)
                else condition.any_of
            )
        else:
            clashing = [v for v in members(have) if v in condition.any_of]
            message = (
                f"{key}={value} conflicts with {condition.key}={clashing[0]} ({condition.why})"
            )
            if cat.is_multiple(condition.key):
                satisfying = (tuple(v for v in members(have) if v not in condition.any_of),)
            else:
                satisfying = tuple(
                    v for v in cat.choices(condition.key) if v not in condition.any_of
                )
        return BrokenRule(key, message, condition.key, satisfying, value)
    return None


def broken_rules(selection: Selection, cat: Catalogue | None = None) -> list[BrokenRule]:
    """Return every rule ``selection`` (slot and setting -> value) breaks, in question order."""
    cat = cat or catalogue()
    found = (_broken(selection, key, cat) for key in cat.all_keys())
    return [broken for broken in found if broken is not None]


def violations(selection: Selection, cat: Catalogue | None = None) -> list[str]:
    """Return the one-line message of every rule ``selection`` breaks."""
    return [broken.message for broken in broken_rules(selection, cat)]


def repair(
    selection: Selection, changes: Selection, cat: Catalogue | None = None
) -> Selection | None:
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


def _alternatives(selection: Selection, key: str, value: str, cat: Catalogue) -> list[Value]:
    """Other values of ``key`` without the rule's owner ``value``."""
    if cat.is_multiple(key):
        return [tuple(v for v in members(selection[key]) if v != value)]
    return [v for v in cat.choices(key) if v != selection[key]]


def check_compatibility(selection: Selection, source: str) -> None:
    """Raise :class:`StackError` naming both sides and a fix if ``selection`` breaks a rule."""
    cat = catalogue()
    broken = broken_rules(selection, cat)
    if not broken:
        return
    key, message, other, satisfying, value = broken[0]
    fixes = [repair(selection, {other: choice}, cat) for choice in satisfying]
    # Or another value of the rule's owner, with what it needs in turn, keeping the other
    # side as it is (``--set deploy=aws-cdk`` is answered with the platform that runs there).
    alone = [
        fix
        for choice in _alternatives(selection, key, value, cat)
        if (fix := repair(selection, {key: choice}, cat)) is not None and other not in fix
    ]
    found = [fix for fix in (*fixes, *alone) if fix is not None]
    texts = [" ".join(spelled(k, v) for k, v in fix.items()) for fix in found]
    hint = f"; set {', or '.join(texts)}" if texts else ""
    raise StackError(f"{source}: {message}{hint}")
