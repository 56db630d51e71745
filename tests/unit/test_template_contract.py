"""The stack models, the slot registry and the Copier questions must describe the same thing."""

from __future__ import annotations

from mlops_scaffold.registry import SETTING_CHOICES, SLOTS
from mlops_scaffold.render import template_questions
from mlops_scaffold.stacks import SETTING_KEYS, SLOT_KEYS, StackSettings

PROJECT_LEVEL = {"project_name", "package_name", "description", "profile", "scaffold_version"}


def test_questions_are_the_stack_fields() -> None:
    questions = set(template_questions())
    assert questions - PROJECT_LEVEL == set(SLOT_KEYS) | set(SETTING_KEYS)
    assert questions >= PROJECT_LEVEL


def test_slot_questions_offer_exactly_the_registry_values() -> None:
    questions = template_questions()
    for slot, components in SLOTS.items():
        assert sorted(questions[slot]["choices"]) == sorted(components), slot


def test_setting_questions_match_types_choices_and_defaults() -> None:
    questions = template_questions()
    for key, field in StackSettings.model_fields.items():
        question = questions[key]
        assert question["default"] == field.default, key
        expected_type = "int" if field.annotation is int else "str"
        assert question["type"] == expected_type, key
        if key in SETTING_CHOICES:
            assert question["choices"] == list(SETTING_CHOICES[key]), key
