"""No shared template file branches on a particular component.

A component's files belong in its folder (templates/components/<slot>/<name>/); a file
under templates/project is shared by every stack and must not ask which component a
slot holds (``{% if serving == 'kserve' %}``, ``tuning != 'none'``, ``deploy in [...]``):
it includes the chosen values' fragments at its points or iterates over manifest data.
Nor should copier.yml drop files by component (``_exclude``) where a manifest's
``files:`` can own them. ALLOWED_BRANCHES is empty since every shared file was composed;
the hand ``_exclude`` rules left are counted: a count may only go down.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from mlops_scaffold.catalogue import catalogue
from mlops_scaffold.resources import template_dir
from mlops_scaffold.template_sync import exclude_rules

# Shared file (relative to templates/project) -> component branches it may still hold.
ALLOWED_BRANCHES: dict[str, int] = {}
# copier.yml _exclude rules that drop files by component.
ALLOWED_EXCLUDE_BRANCHES = 1

JINJA = re.compile(r"\{[{%]-?(.*?)-?[}%]\}", re.DOTALL)


def component_test() -> re.Pattern[str]:
    """A slot compared to a value: ``slot ==``, ``slot !=``, ``slot in``, ``slot not in``."""
    slots = "|".join(map(re.escape, catalogue().slots))
    return re.compile(rf"\b({slots})\s*(?:==|!=|(?:not\s+)?in\b)")


def branches(text: str, test: re.Pattern[str]) -> int:
    """Component comparisons inside the Jinja tags and expressions of ``text``."""
    return sum(len(test.findall(body)) for body in JINJA.findall(text))


def test_component_branches_in_shared_files_only_shrink() -> None:
    project = template_dir() / "project"
    test = component_test()
    found = {}
    # Through the links to component folders: a component's file that asks which
    # component another slot holds still counts, at its project path.
    every = (
        Path(root, name) for root, _, names in os.walk(project, followlinks=True) for name in names
    )
    for path in sorted(every):
        if path.is_file() and path.suffix == ".jinja":
            count = branches(path.read_text(encoding="utf-8"), test)
            if count:
                found[path.relative_to(project).as_posix()] = count
    grown = {
        name: f"{count} (allowed {ALLOWED_BRANCHES.get(name, 0)})"
        for name, count in found.items()
        if count > ALLOWED_BRANCHES.get(name, 0)
    }
    assert grown == {}, (
        "shared files branch on a component: give the component its own file in its folder "
        "or contribute through its manifest instead"
    )
    shrunk = {
        name: f"{found.get(name, 0)} (allowlist says {allowed}: lower it)"
        for name, allowed in ALLOWED_BRANCHES.items()
        if found.get(name, 0) < allowed
    }
    assert shrunk == {}


def test_fragments_do_not_branch_on_other_components() -> None:
    """A fragment is its choice's contribution: it never asks what another slot holds."""
    test = component_test()
    folder = template_dir() / "components"
    found = {
        path.relative_to(folder).as_posix(): count
        for path in sorted(folder.glob("*/*/fragments/*.jinja"))
        if (count := branches(path.read_text(encoding="utf-8"), test))
    }
    assert found == {}, "a fragment that depends on another slot belongs to a rule or a file"


def test_exclude_rules_by_component_only_shrink() -> None:
    """Rules written by hand; those of owned files are generated from the manifests."""
    config = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    test = component_test()
    generated = set(exclude_rules(catalogue()))
    count = sum(
        1 for rule in config.get("_exclude", []) if test.search(rule) and rule not in generated
    )
    assert count <= ALLOWED_EXCLUDE_BRANCHES, "a new _exclude rule by component"
    assert count == ALLOWED_EXCLUDE_BRANCHES, f"{count} rules now: lower the allowlist"


def test_the_check_sees_every_form_of_branch() -> None:
    test = component_test()
    text = (
        "{% if serving == 'kserve' %}a{% endif %}{%- if tuning != 'none' -%}"
        "{{ 'x' if deploy in ['compose'] else 'y' }}{% elif ci not in ('none',) %}"
        "{% if tracking_backend == 'postgresql' %}{% if served == 'x' %} tuning == 'none'"
    )
    assert branches(text, test) == 4


POINT = re.compile(r"""part\.point\s*==\s*'([^']+)'|'point',\s*'equalto',\s*'([^']+)'""")


def test_every_fragment_has_a_point_that_includes_it() -> None:
    """A fragment whose point no template names would be dropped without a word."""
    root = template_dir()
    named = {
        next(group for group in match.groups() if group)
        for path in root.rglob("*.jinja")
        for match in POINT.finditer(path.read_text(encoding="utf-8"))
    }
    contributed = {
        path.relative_to(root / "components").as_posix(): path.name.removesuffix(".jinja")
        for path in (root / "components").glob("*/*/fragments/*.jinja")
    }
    assert contributed, "no fragments found"
    orphans = {path: point for path, point in contributed.items() if point not in named}
    assert orphans == {}
