from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_scaffold.catalogue import catalogue
from mlops_scaffold.errors import StackError
from mlops_scaffold.stacks import (
    SETTING_KEYS,
    SLOT_KEYS,
    builtin_profiles,
    load_reference,
    load_stack,
    parse_override,
    stack_from_answers,
)


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_startup_profile_loads_with_every_slot() -> None:
    stack = load_stack(profile="startup")
    assert stack.name == "startup"
    assert set(stack.slots.model_dump()) == set(catalogue().slots)
    assert stack.settings.serving_port == 8000
    assert "startup" in builtin_profiles()


@pytest.mark.parametrize("profile", builtin_profiles())
def test_every_builtin_profile_is_valid(profile: str) -> None:
    stack = load_stack(profile=profile)
    answers = stack.to_answers()
    assert answers["profile"] == profile
    assert set(answers) == {"profile", *SLOT_KEYS, *SETTING_KEYS}


def test_extends_overrides_slots_and_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "team.yaml",
        {
            "name": "team",
            "description": "ours",
            "extends": "startup",
            "slots": {"tuning": "none"},
            "settings": {"serving_port": 8081},
        },
    )
    stack = load_stack(stack_file=path)
    assert stack.slots.tuning == "none"
    assert stack.slots.tracking == "mlflow"  # inherited
    assert stack.settings.serving_port == 8081
    assert stack.settings.mlflow_port == 5000  # inherited


def test_extends_a_file_relative_to_the_child(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {"name": "base", "description": "b", "extends": "startup",
                                   "slots": {"ci": "none"}})
    child = write(tmp_path / "child.yaml", {"name": "child", "description": "c",
                                            "extends": "base.yaml"})
    stack = load_stack(stack_file=child)
    assert stack.slots.ci == "none"
    assert stack.name == "child"


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"name": "a", "description": "a", "extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"name": "b", "description": "b", "extends": "a.yaml"})
    with pytest.raises(StackError, match="cycle"):
        load_stack(stack_file=tmp_path / "a.yaml")


def test_set_overrides_slots_and_typed_settings() -> None:
    stack = load_stack(profile="startup", overrides=["tuning=none", "serving_port=9000"])
    assert stack.slots.tuning == "none"
    assert stack.settings.serving_port == 9000


def test_parse_override_keeps_string_settings_strings() -> None:
    assert parse_override("python_version=3.11") == ("settings", "python_version", "3.11")
    assert parse_override("mlflow_port=5001") == ("settings", "mlflow_port", 5001)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tuning=ray"], "slot 'tuning' allows optuna, ray-tune, none; got 'ray'"),
        (["nonsense=1"], "unknown key 'nonsense'; allowed keys: tracking"),
        (["serving_port=80"], "settings.serving_port: Input should be greater than or equal"),
        (["serving_port=abc"], "settings.serving_port: Input should be a valid integer"),
        (["tuning"], "expected KEY=VALUE"),
        (["python_version=2.7"], "setting 'python_version' allows 3.11; got '2.7'"),
    ],
)
def test_bad_overrides_name_the_key_and_allowed_values(overrides: list[str], message: str) -> None:
    with pytest.raises(StackError) as caught:
        load_stack(profile="startup", overrides=overrides)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_unknown_slot_value_in_file_names_file_key_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", {"name": "bad", "description": "d", "extends": "startup",
                                         "slots": {"serving": "flask"}})
    with pytest.raises(StackError) as caught:
        load_stack(stack_file=path)
    assert str(path) in caught.value.message
    assert "slots.serving" in caught.value.message
    allowed = "allows bentoml, fastapi, mlserver, tf-serving, torchserve, triton"
    assert allowed in caught.value.message


def test_unknown_keys_are_rejected_with_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", {"name": "bad", "description": "d", "extends": "startup",
                                         "slots": {"servin": "fastapi"}, "colour": "blue"})
    with pytest.raises(StackError) as caught:
        load_stack(stack_file=path)
    message = caught.value.message
    assert "unknown key 'slots.servin'" in message
    assert "unknown key 'colour'" in message
    assert "allowed: tracking, trackers, data_versioning" in message


def test_missing_slot_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "partial.yaml", {"name": "p", "description": "d",
                                             "slots": {"tracking": "mlflow"}})
    with pytest.raises(StackError, match=r"missing key 'slots\.serving'"):
        load_stack(stack_file=path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
        ("name: x\ndescription: d\nslots: 3\n", "slots must be a mapping"),
        ("name: x\ndescription: d\nextends: nowhere\n", "extends: unknown profile 'nowhere'"),
        ("name: x\ndescription: d\nextends: ./missing.yaml\n", "is not a file"),
        ("name: Bad Name\ndescription: d\nextends: startup\n", "name: String should match"),
    ],
)
def test_malformed_stack_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StackError, match=message):
        load_stack(stack_file=path)


def test_missing_file_and_unknown_profile() -> None:
    with pytest.raises(StackError, match="stack file not found"):
        load_stack(stack_file=Path("/nonexistent/stack.yaml"))
    with pytest.raises(StackError, match=r"available profiles: .*startup"):
        load_stack(profile="nope")
    with pytest.raises(StackError, match="exactly one"):
        load_stack()


def test_show_reference_accepts_profile_or_file(repo_root: Path) -> None:
    assert load_reference("startup").name == "startup"
    example = load_reference(str(repo_root / "examples" / "custom-stack.yaml"))
    assert example.extends == "startup"
    round_trip = yaml.safe_load(example.to_yaml())
    assert round_trip["slots"]["tuning"] == "none"


def test_stack_from_answers_round_trips_and_applies_overrides() -> None:
    stack = load_stack(profile="startup")
    answers = {**stack.to_answers(), "project_name": "x", "_commit": "abc"}
    rebuilt = stack_from_answers(answers, ["ci=none"])
    assert rebuilt.slots.ci == "none"
    assert rebuilt.settings == stack.settings
