"""The stack models, the component catalogue and the Copier questions describe the same thing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlops_scaffold import stacks
from mlops_scaffold.catalogue import catalogue, load_catalogue
from mlops_scaffold.render import template_questions
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import SETTING_KEYS, SLOT_KEYS, StackSettings
from mlops_scaffold.template_sync import (
    CONTRIBUTION_QUESTIONS,
    generated_copier_config,
    link_problems,
)

PROJECT_LEVEL = {
    "project_name",
    "package_name",
    "description",
    "profile",
    "scaffold_version",
    "data_schema",
    "model_name",  # computed from project_name and data_schema (hidden)
    "experiment_name",
}


def test_questions_are_the_stack_fields() -> None:
    """Every question is a stack field, a project-level answer or a catalogue contribution."""
    questions = set(template_questions()) - set(CONTRIBUTION_QUESTIONS)
    assert questions - PROJECT_LEVEL == set(SLOT_KEYS) | set(SETTING_KEYS)
    assert questions >= PROJECT_LEVEL


def test_catalogue_slots_are_the_stack_slots_and_closed_settings_are_settings() -> None:
    cat = catalogue()
    assert tuple(cat.slots) == SLOT_KEYS
    assert SETTING_KEYS[: len(cat.settings)] == tuple(cat.settings)


def test_a_new_slot_and_setting_need_no_python(tmp_path: Path, monkeypatch: Any) -> None:
    """The stack models are built from the catalogue: a folder and a YAML entry suffice."""
    root = tmp_path / "components"
    shutil.copytree(template_dir() / "components", root, symlinks=True)
    (root / "explainability" / "none").mkdir(parents=True)
    (root / "explainability" / "none" / "component.yml").write_text("description: None\n")
    (root / "explainability" / "shap").mkdir()
    (root / "explainability" / "shap" / "component.yml").write_text("description: SHAP\n")
    with (root / "slots.yml").open("a", encoding="utf-8") as slots:
        slots.write("explainability:\n  help: Explanations\n  default: none\n")
    with (root / "settings.yml").open("a", encoding="utf-8") as settings:
        settings.write(
            "drift_method:\n  help: Drift test\n  default: ks\n"
            "  values:\n    ks: {description: Kolmogorov-Smirnov}\n"
            "    psi: {description: Population stability index}\n"
        )
    monkeypatch.setattr(stacks, "catalogue", lambda: load_catalogue(root))
    slots_model, settings_model = stacks._catalogue_models()
    selection = {slot: spec.default for slot, spec in catalogue().slots.items()}
    chosen = slots_model.model_validate({**selection, "explainability": "shap"})
    assert chosen.model_dump()["explainability"] == "shap"
    with pytest.raises(ValidationError, match="allows shap, none; got 'lime'"):
        slots_model.model_validate({**selection, "explainability": "lime"})
    with pytest.raises(ValidationError, match="explainability"):
        slots_model.model_validate(selection)  # a slot is required
    assert settings_model().model_dump()["drift_method"] == "ks"
    with pytest.raises(ValidationError, match="allows ks, psi"):
        settings_model.model_validate({"drift_method": "chi2"})


def test_copier_yml_and_project_links_are_generated_from_the_catalogue() -> None:
    """Fails when a manifest changed and copier.yml or the project's links were not synced.

    Fix: ``python -m mlops_scaffold.template_sync --write``. Plain ``copier copy`` reads
    only copier.yml (its ``!include`` merges whole question files, ``_external_data`` reads
    files of the destination, not the template), so the choices and the exclude rules of
    owned files are generated into it; it renders ``project/``, so owned files are linked.
    """
    text = (template_dir() / "copier.yml").read_text(encoding="utf-8")
    assert generated_copier_config(text, catalogue()) == text
    assert link_problems(template_dir(), catalogue()) == []


def test_every_file_in_a_component_folder_is_owned_by_its_manifest() -> None:
    """A file dropped into ``<slot>/<name>/files/`` but not listed would never render."""
    cat = catalogue()
    root = template_dir() / "components"
    for slot, components in cat.components.items():
        for name, component in components.items():
            files = root / slot / name / "files"
            if not files.exists():
                assert component.files == (), f"{slot}/{name}: files listed, no files/ folder"
                continue
            for path in files.rglob("*"):
                if path.is_symlink() or path.is_dir():
                    continue  # another component's file inside this one's folder
                relative = path.relative_to(files).as_posix()
                assert any(
                    relative == owned or relative.startswith(f"{owned}/")
                    for owned in component.files
                ), f"{slot}/{name}: {relative} is not under a path its manifest lists"


def test_slot_and_setting_questions_offer_exactly_the_catalogue_values() -> None:
    questions = template_questions()
    cat = catalogue()
    for key in cat.all_keys():
        assert questions[key]["choices"] == list(cat.choices(key)), key


def test_setting_questions_match_types_choices_and_defaults() -> None:
    questions = template_questions()
    for key, field in StackSettings.model_fields.items():
        question = questions[key]
        assert question["default"] == field.default, key
        expected_type = "int" if field.annotation is int else "str"
        assert question["type"] == expected_type, key
    for slot, spec in catalogue().slots.items():
        default = list(spec.default) if spec.multiple else spec.default
        assert questions[slot]["default"] == default, slot
        assert questions[slot].get("multiselect", False) == spec.multiple, slot


def test_every_exclude_rule_names_a_template_path() -> None:
    """An ``_exclude`` rule left behind by a moved file would silently ship the file."""
    config = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    project = template_dir() / "project"
    stale = []
    for rule in config["_exclude"]:
        path = re.sub(r"\{%.*?%\}", "", rule)
        if "*" in path or not path.strip():
            continue  # a pattern, not a path of a conditional file
        candidates = [project / path, project / f"{path}.jinja"]
        if not any(c.exists() or c.is_symlink() for c in candidates):
            stale.append(rule)
    assert stale == []
