"""No shared template file branches on a particular component or closed setting value.

A component's files belong in its folder (templates/components/<slot>/<name>/); a file
under templates/project is shared by every stack and must not ask which component a
slot holds (``{% if serving == 'kserve' %}``, ``tuning != 'none'``, ``deploy in [...]``)
nor which value a closed setting has (``tracking_backend == 'postgresql'``,
``online_store == 'redis'``): it includes the chosen values' fragments at its points or
iterates over manifest data. Nor should copier.yml drop files by component or setting
value (``_exclude``) where a manifest's ``files:`` can own them. ALLOWED_BRANCHES and
ALLOWED_SETTING_BRANCHES are empty since every shared file was composed; the hand
``_exclude`` rules left are counted: a count may only go down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.catalogue import catalogue
from mlops_scaffold.resources import template_dir
from mlops_scaffold.template_sync import exclude_rules

# Shared file (relative to templates/project) -> component branches it may still hold.
ALLOWED_BRANCHES: dict[str, int] = {}
# Shared file -> comparisons of a closed setting to a value it may still hold.
ALLOWED_SETTING_BRANCHES: dict[str, int] = {}
# copier.yml _exclude rules that drop files by component.
ALLOWED_EXCLUDE_BRANCHES = 0
# copier.yml _exclude rules that drop files by a closed setting's value.
ALLOWED_EXCLUDE_SETTING_BRANCHES = 0

JINJA = re.compile(r"\{[{%]-?(.*?)-?[}%]\}", re.DOTALL)


def comparison_test(keys: Iterable[str]) -> re.Pattern[str]:
    """One of ``keys`` compared to a value: ``key ==``, ``key !=``, ``key in``, ``key not in``."""
    names = "|".join(map(re.escape, keys))
    return re.compile(rf"\b({names})\s*(?:==|!=|(?:not\s+)?in\b)")


def component_test() -> re.Pattern[str]:
    """A slot compared to a component."""
    return comparison_test(catalogue().slots)


def setting_test() -> re.Pattern[str]:
    """A closed setting compared to one of its values."""
    return comparison_test(catalogue().settings)


def branches(text: str, test: re.Pattern[str]) -> int:
    """Component comparisons inside the Jinja tags and expressions of ``text``."""
    return sum(len(test.findall(body)) for body in JINJA.findall(text))


def shared_file_branches(test: re.Pattern[str]) -> dict[str, int]:
    """Comparisons matching ``test`` per shared file (relative to templates/project)."""
    project = template_dir() / "project"
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
    return found


def grown_and_shrunk(
    found: dict[str, int], allowed: dict[str, int]
) -> tuple[dict[str, str], dict[str, str]]:
    """Files over their allowance, and allowances above what is left (to lower)."""
    grown = {
        name: f"{count} (allowed {allowed.get(name, 0)})"
        for name, count in found.items()
        if count > allowed.get(name, 0)
    }
    shrunk = {
        name: f"{found.get(name, 0)} (allowlist says {limit}: lower it)"
        for name, limit in allowed.items()
        if found.get(name, 0) < limit
    }
    return grown, shrunk


def test_component_branches_in_shared_files_only_shrink() -> None:
    grown, shrunk = grown_and_shrunk(shared_file_branches(component_test()), ALLOWED_BRANCHES)
    assert grown == {}, (
        "shared files branch on a component: give the component its own file in its folder "
        "or contribute through its manifest instead"
    )
    assert shrunk == {}


def test_setting_branches_in_shared_files_only_shrink() -> None:
    """A closed setting's value contributes like a component: fragments in its folder."""
    grown, shrunk = grown_and_shrunk(shared_file_branches(setting_test()), ALLOWED_SETTING_BRANCHES)
    assert grown == {}, (
        "shared files compare a closed setting to a value: contribute from the value's folder "
        "(templates/components/<setting>/<value>/fragments/) or a manifest field instead"
    )
    assert shrunk == {}


@pytest.mark.parametrize("kind", ["slot", "setting"])
def test_fragments_do_not_branch_on_other_components(kind: str) -> None:
    """A fragment is its choice's contribution: it never asks what another slot holds,
    nor which value a closed setting has."""
    test = component_test() if kind == "slot" else setting_test()
    folder = template_dir() / "components"
    found = {
        path.relative_to(folder).as_posix(): count
        for path in sorted(folder.glob("*/*/fragments/*.jinja"))
        if (count := branches(path.read_text(encoding="utf-8"), test))
    }
    assert found == {}, f"a fragment that depends on another {kind} belongs to a rule or a file"


@pytest.mark.parametrize("kind", ["component", "setting"])
def test_exclude_rules_by_component_only_shrink(kind: str) -> None:
    """Rules written by hand; those of owned files are generated from the manifests."""
    config = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    test, allowed = (
        (component_test(), ALLOWED_EXCLUDE_BRANCHES)
        if kind == "component"
        else (setting_test(), ALLOWED_EXCLUDE_SETTING_BRANCHES)
    )
    generated = set(exclude_rules(catalogue()))
    count = sum(
        1 for rule in config.get("_exclude", []) if test.search(rule) and rule not in generated
    )
    assert count <= allowed, f"a new _exclude rule by {kind}"
    assert count == allowed, f"{count} rules now: lower the allowlist"


def test_the_check_sees_every_form_of_branch() -> None:
    test = component_test()
    text = (
        "{% if serving == 'kserve' %}a{% endif %}{%- if tuning != 'none' -%}"
        "{{ 'x' if deploy in ['compose'] else 'y' }}{% elif ci not in ('none',) %}"
        "{% if tracking_backend == 'postgresql' %}{% if served == 'x' %} tuning == 'none'"
    )
    assert branches(text, test) == 4
    assert branches(text, setting_test()) == 1
    assert (
        branches("{{ 'x' if online_store not in ['redis'] }}{% if validation %}", setting_test())
        == 1
    )


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
