"""Keep ``templates/copier.yml`` and ``templates/project`` in step with the catalogue.

Generated from the component folders, never edited by hand:

* the slot and closed-setting questions of ``copier.yml`` (their ``choices:``) and the
  hidden questions holding the chosen values' contributions (``offline_env``, ...);
* the ``_exclude`` rules of the files components own: a path listed under ``files:`` in
  ``components/<slot>/<name>/component.yml`` lives in ``components/<slot>/<name>/files/
  <path>`` and is excluded from a project unless its slot holds that component;
* a relative symlink at ``project/<path>`` to each owned path, so plain ``copier copy``
  (which renders ``_subdirectory: project`` and follows symlinks), the built-in engine and
  the wheel (hatchling stores a link's content) find the file at its project path.

``python -m mlops_scaffold.template_sync --write`` brings all three up to date (moving a
newly owned path from ``project/`` into its component's folder); ``--check`` exits 1
naming what is stale. Plain ``copier copy`` reads only ``copier.yml`` (its ``!include``
merges whole question files, ``_external_data`` reads the destination), hence the
generated blocks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .catalogue import FILES_DIR, Catalogue, catalogue, components_dir, fragment_path
from .errors import CatalogueError
from .resources import template_dir

TEMPLATE_SUFFIX = ".jinja"
EXCLUDE_BEGIN = "  # ---- generated: files owned by components (template_sync)"
EXCLUDE_END = "  # ---- end of generated exclude rules"

BEGIN = (
    "# ---- generated from templates/components/ by"
    " `python -m mlops_scaffold.template_sync --write`"
)
END = "# ---- end of generated questions"
#: Hidden questions computed from the chosen values' manifests: question -> (manifest
#: field, the Jinja filters applied to the chosen values' items of that field).
CONTRIBUTIONS = {
    "offline_env": ("offline_env", "unique(attribute='name') | list"),  # each opt-out once
    "offline_tools": ("offline_env", "map(attribute='tool') | unique | list"),
    "env_secrets": ("env_secrets", "unique | list"),
    "packages": ("packages", "unique(attribute='requirement') | list"),
    "serving_packages": ("serving_packages", "unique(attribute='requirement') | list"),
    "stages": ("stages", "unique | list"),
    "verify_steps": ("verify_steps", "list"),  # verify/plan.py composes them in order
    "serving_routes": ("serving_routes", "unique | sort | list"),
    "serving_agents": ("serving_agents", "unique | sort | list"),
    "tracker_modules": ("tracker_modules", "unique | list"),
}
#: The fields a value contributes even where another choice provides it (``provided_by``).
PACKAGES = ("packages", "serving_packages")
#: Hidden question listing the chosen values' fragments (``{"point", "path"}``, key order):
#: a shared file includes them where it names the point, e.g.
#: ``{% for part in fragments if part.point == 'docker-compose.services' %}``.
FRAGMENTS_QUESTION = "fragments"
CONTRIBUTION_QUESTIONS = (*CONTRIBUTIONS, FRAGMENTS_QUESTION)


def copier_questions(cat: Catalogue) -> str:
    """Return the slot and closed-setting questions of ``copier.yml`` as YAML text."""
    lines = [BEGIN]
    for key in cat.all_keys():
        spec = cat.slots[key] if key in cat.slots else cat.settings[key]
        default = _flow(spec.default) if isinstance(spec.default, tuple) else _scalar(spec.default)
        lines += [
            f"{key}:",
            "  type: str",
            *(["  multiselect: true"] if cat.is_multiple(key) else []),
            f"  help: {spec.help}",
            f"  choices: {_flow(cat.choices(key))}",
            f"  default: {default}",
            "",
        ]
    lines += _contribution_questions(cat)
    lines[-1] = END
    return "\n".join(lines) + "\n"


def _chosen(
    cat: Catalogue, items: Callable[[str, str], list[Any]], *, provided_too: bool = False
) -> str:
    """Return a Jinja expression: ``items(key, value)`` of every chosen value, in key order.

    One lookup table per slot or setting whose values contribute, indexed by the answer:
    the template reads the catalogue's data without naming a component. A multiple slot's
    table is a list of ``[value, items]`` pairs in catalogue order, of which the chosen
    members' items are concatenated. A value another choice may provide (``provided_by``)
    contributes only while its condition does not hold, unless ``provided_too`` (its
    packages).
    """
    terms = []
    for key in cat.all_keys():
        table = {value: items(key, value) for value in cat.choices(key)}
        table = {value: found for value, found in table.items() if found}
        if not table:
            continue
        if cat.is_multiple(key):
            pairs = json.dumps([[value, found] for value, found in table.items()])
            terms.append(
                f"({pairs} | selectattr('0', 'in', {key}) | map(attribute='1') | sum(start=[]))"
            )
            continue
        plain = {}
        for value, found in table.items():
            condition = None if provided_too else cat.choice(key, value).provided_by
            if condition is None:
                plain[value] = found
                continue
            terms.append(
                f"({json.dumps({value: found})}.get({key}, []) "
                f"if {condition.key} not in {json.dumps(list(condition.any_of))} else [])"
            )
        if plain:
            terms.append(f"{json.dumps(plain, sort_keys=True)}.get({key}, [])")
    return "(" + " + ".join(terms or ["[]"]) + ")"


def _fragments(cat: Catalogue, key: str, value: str) -> list[dict[str, str]]:
    return [
        {"point": point, "path": fragment_path(key, value, point)}
        for point in cat.fragment_points(key, value)
    ]


def _contribution_questions(cat: Catalogue) -> list[str]:
    """Hidden questions (never asked nor recorded) holding the chosen values' contributions."""
    hidden = {
        name: (
            f"{{{{ {_chosen(cat, _manifest_field(cat, field), provided_too=field in PACKAGES)}"
            f" | {filters} | tojson }}}}"
        )
        for name, (field, filters) in CONTRIBUTIONS.items()
    }
    hidden[FRAGMENTS_QUESTION] = (
        f"{{{{ {_chosen(cat, lambda key, value: _fragments(cat, key, value))} | tojson }}}}"
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


def _manifest_field(cat: Catalogue, field: str) -> Callable[[str, str], list[Any]]:
    def items(key: str, value: str) -> list[Any]:
        return [
            item if isinstance(item, str) else item.model_dump(exclude_none=True)
            for item in getattr(cat.choice(key, value), field)
        ]

    return items


def _scalar(value: str) -> str:
    dumped = yaml.safe_dump([value], default_flow_style=True, width=1000).strip()
    return dumped[1:-1]


def _flow(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_scalar(value) for value in values) + "]"


def _replace_block(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with the lines from ``begin`` to ``end`` (both included) replaced by ``block``."""
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise CatalogueError(f"copier.yml: no block between {begin!r} and {end!r}")
    return text[:start] + block + text[text.index("\n", stop) + 1 :]


def copier_config_with_questions(text: str, cat: Catalogue) -> str:
    """``copier.yml`` text with its generated block replaced by the catalogue's questions."""
    return _replace_block(text, BEGIN, END, copier_questions(cat))


# ---- files owned by components -----------------------------------------------------------


def exclude_rules(cat: Catalogue) -> list[str]:
    """Return the ``_exclude`` rule of each owned path: gone unless its component is chosen.

    A member of a multiple slot is tested with ``in``. A value another choice may provide
    (``provided_by``) has its files only while that choice does not.
    """
    rules = []
    for key, value, path in cat.owned_paths():
        test = f"'{value}' not in {key}" if cat.is_multiple(key) else f"{key} != '{value}'"
        condition = cat.choice(key, value).provided_by
        if condition is not None:  # another choice provides it there: no file
            test += f" or {condition.key} in {json.dumps(list(condition.any_of))}"
        rules.append(f"{{% if {test} %}}{_project_path(path)}{{% endif %}}")
    return rules


def _project_path(template_path: str) -> str:
    """Return the rendered path of a template path (the ``.jinja`` suffix dropped)."""
    return template_path.removesuffix(TEMPLATE_SUFFIX)


def copier_config_with_excludes(text: str, cat: Catalogue) -> str:
    """``copier.yml`` text with its generated ``_exclude`` block replaced."""
    rules = "".join(f"  - {json.dumps(rule)}\n" for rule in exclude_rules(cat))
    return _replace_block(
        text, EXCLUDE_BEGIN, EXCLUDE_END, f"{EXCLUDE_BEGIN}\n{rules}{EXCLUDE_END}\n"
    )


def generated_copier_config(text: str, cat: Catalogue) -> str:
    """``copier.yml`` text with every generated block up to date."""
    return copier_config_with_excludes(copier_config_with_questions(text, cat), cat)


def link_problems(template: Path, cat: Catalogue) -> list[str]:
    """Return what is out of step between owned paths, component folders and project links."""
    project = template / "project"
    components = components_dir(template)
    problems = []
    wanted = set()
    for slot, name, path in cat.owned_paths():
        source = components / slot / name / FILES_DIR / path
        link = project / path
        wanted.add(os.path.normpath(link))
        if not source.exists() or source.is_symlink():
            problems.append(f"{source}: missing (owned by {slot}/{name})")
        elif not link.is_symlink() or link.resolve() != source.resolve():
            problems.append(f"{link}: not a link to {source}")
    for root, dirs, names in os.walk(project, followlinks=True):
        for entry in (*dirs, *names):
            found = Path(root, entry)
            if found.is_symlink() and os.path.normpath(found) not in wanted:
                problems.append(f"{found}: a link no component's files: list names")
    return problems


def write_links(template: Path, cat: Catalogue) -> None:
    """Move each owned path into its component folder (once) and link it from the project."""
    project = template / "project"
    components = components_dir(template)
    for slot, name, path in cat.owned_paths():
        source = components / slot / name / FILES_DIR / path
        link = project / path
        if not source.exists() and link.exists() and not link.is_symlink():
            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(link, source)  # the first sync: the path moves into its folder
        if link.is_symlink():
            link.unlink()
        if link.exists():
            raise CatalogueError(f"{link}: a file where {slot}/{name} owns the path")
        if not source.exists():
            raise CatalogueError(f"{source}: missing (owned by {slot}/{name})")
        link.parent.mkdir(parents=True, exist_ok=True)  # a folder only components have
        real_parent = link.parent.resolve()  # an owned path may lie in another's folder
        link.symlink_to(os.path.relpath(source, real_parent))


def main(argv: list[str]) -> int:
    """``--write`` updates copier.yml and the project links; ``--check`` fails if stale."""
    if argv not in (["--write"], ["--check"]):
        print("usage: python -m mlops_scaffold.template_sync --write | --check", file=sys.stderr)
        return 2
    template = template_dir()
    cat = catalogue()
    path = template / "copier.yml"
    current = path.read_text(encoding="utf-8")
    wanted = generated_copier_config(current, cat)
    if argv == ["--check"]:
        problems = link_problems(template, cat)
        if wanted != current:
            problems.insert(0, f"{path}: stale generated blocks")
        for problem in problems:
            print(f"{problem}; run python -m mlops_scaffold.template_sync --write")
        return 1 if problems else 0
    path.write_text(wanted, encoding="utf-8")
    write_links(template, cat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
