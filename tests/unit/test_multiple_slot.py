"""A slot holding several components at once: the ``trackers`` slot beside ``tracking``.

Its stack value is a list (a stack file's YAML list, ``--set trackers=a,b``, empty for
none), its Copier question a multiselect, the compatibility rules apply to each member,
and every contribution of the generated ``copier.yml`` takes each chosen member's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlops_scaffold import catalogue as catalogue_module
from mlops_scaffold.answers import project_answers
from mlops_scaffold.catalogue import broken_rules, catalogue, components_dir, load_catalogue
from mlops_scaffold.errors import StackError
from mlops_scaffold.render import render
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import load_stack, parse_override

TRACKERS = catalogue().choices("trackers")


def stack_file(tmp_path: Path, trackers: object) -> Path:
    path = tmp_path / "stack.yaml"
    data = {"name": "team", "description": "d", "extends": "startup", "slots": {}}
    data["slots"] = {"trackers": trackers}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_slot_is_a_multiple_one_with_no_member_by_default() -> None:
    spec = catalogue().slots["trackers"]
    assert spec.multiple and spec.default == () and spec.implied_by == "tracking"
    assert {"clearml", "comet", "neptune", "tensorboard", "wandb"} <= set(TRACKERS)
    assert load_stack(profile="startup").slots.trackers == ()  # type: ignore[attr-defined]


def test_a_stack_file_lists_members_kept_once_in_catalogue_order(tmp_path: Path) -> None:
    stack = load_stack(stack_file=stack_file(tmp_path, ["wandb", "tensorboard", "wandb"]))
    assert stack.slots.trackers == ("tensorboard", "wandb")  # type: ignore[attr-defined]
    assert stack.to_answers()["trackers"] == ["tensorboard", "wandb"]
    assert "trackers:\n  - tensorboard\n  - wandb\n" in stack.to_yaml()
    one = load_stack(stack_file=stack_file(tmp_path, "wandb"))
    assert one.slots.trackers == ("wandb",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "members"),
    [
        ("trackers=wandb,tensorboard", ("tensorboard", "wandb")),
        (" trackers = tensorboard , ", ("tensorboard",)),
        ("trackers=mlflow,wandb", ("wandb",)),  # the tracking slot's value: always on
        ("trackers=", ()),
    ],
)
def test_set_takes_a_comma_separated_list(text: str, members: tuple[str, ...]) -> None:
    assert parse_override(text)[0] == "slots"
    stack = load_stack(profile="startup", overrides=[text])
    assert stack.slots.trackers == members  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "got"),
    [("trackers=wandb,nope", "'nope'"), ("trackers=trains", "'trains'")],
)
def test_an_unknown_member_is_refused_in_one_line_naming_the_values(text: str, got: str) -> None:
    with pytest.raises(StackError) as caught:
        load_stack(profile="startup", overrides=[text])
    message = caught.value.message
    assert "\n" not in message
    allowed = ", ".join(TRACKERS)
    assert message.endswith(
        f"slots.trackers: slot 'trackers' allows {allowed} (and mlflow, the tracking "
        f"slot's, always on); got {got}"
    ), message


def test_a_stack_file_value_that_is_no_list_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        load_stack(stack_file=stack_file(tmp_path, {"wandb": True}))
    assert "\n" not in caught.value.message
    assert "slot 'trackers' takes a list of " in caught.value.message


@pytest.fixture
def ruled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> catalogue_module.Catalogue:
    """A catalogue copy where wandb needs tuning=optuna and ray-tune conflicts with wandb."""
    root = tmp_path / "components"
    shutil.copytree(components_dir(), root)
    manifest = root / "trackers" / "wandb" / "component.yml"
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["requires"] = [{"slot": "tuning", "any_of": ["optuna"], "why": "test rule"}]
    manifest.write_text(yaml.safe_dump(data), encoding="utf-8")
    ray = root / "tuning" / "ray-tune" / "component.yml"
    data = yaml.safe_load(ray.read_text(encoding="utf-8"))
    data["conflicts"] = [{"slot": "trackers", "any_of": ["tensorboard"], "why": "clash"}]
    ray.write_text(yaml.safe_dump(data), encoding="utf-8")
    cat = load_catalogue(root)
    monkeypatch.setattr(catalogue_module, "catalogue", lambda template=None: cat)
    return cat


def test_rules_apply_to_each_member(ruled: catalogue_module.Catalogue) -> None:
    base = load_stack(profile="startup").selection()
    fine = {**base, "trackers": ("tensorboard", "wandb"), "tuning": "optuna"}
    assert broken_rules(fine, ruled) == []
    needs = broken_rules({**fine, "tuning": "none"}, ruled)
    assert [rule.message for rule in needs] == [
        "trackers=wandb requires tuning=optuna (have tuning=none: test rule)"
    ]
    clash = broken_rules({**fine, "trackers": ("tensorboard",), "tuning": "ray-tune"}, ruled)
    assert [rule.message for rule in clash] == [
        "tuning=ray-tune conflicts with trackers=tensorboard (clash)"
    ]
    with pytest.raises(StackError) as caught:
        catalogue_module.check_compatibility({**fine, "tuning": "none"}, "profile 'startup'")
    # the fixes: the other side's value, or the member dropped from the list
    assert caught.value.message == (
        "profile 'startup': trackers=wandb requires tuning=optuna (have tuning=none: "
        "test rule); set tuning=optuna, or trackers=tensorboard"
    )


def test_the_copier_question_is_a_multiselect_and_contributions_follow_members(
    tmp_path: Path,
) -> None:
    questions = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    question = questions["trackers"]
    assert question["multiselect"] is True
    assert question["choices"] == list(TRACKERS) and question["default"] == []
    target = tmp_path / "demo"
    stack = load_stack(profile="startup", overrides=["trackers=wandb"])
    render(project_answers(stack, target), target)
    package = target / "src" / "demo"
    assert (package / "platform" / "tracker_wandb.py").is_file()
    assert not (package / "platform" / "tracker_tensorboard.py").exists()
    assert 'ADAPTERS: tuple[str, ...] = ("tracker_wandb",)' in (
        package / "platform" / "trackers.py"
    ).read_text(encoding="utf-8")
    pyproject = (target / "pyproject.toml").read_text(encoding="utf-8")
    assert '"wandb[sweeps]==0.31.0"' in pyproject and "tensorboard==" not in pyproject
    assert "export WANDB_MODE ?= offline" in (target / "Makefile").read_text(encoding="utf-8")


def test_research_profile_is_startup_with_wandb_tensorboard_and_ray_tune() -> None:
    research = load_stack(profile="research").selection()
    startup = load_stack(profile="startup").selection()
    assert research["trackers"] == ("tensorboard", "wandb")
    assert research["tuning"] == "ray-tune"
    changed = {key for key in research if research[key] != startup[key]}
    assert changed == {"trackers", "tuning"}  # one laptop, like startup
    assert load_stack(profile="research", overrides=["tuning=optuna"]).slots.tuning == "optuna"


@pytest.mark.parametrize(
    ("overrides", "tuned"),
    [((), True), (("tuning=optuna",), True), (("tuning=none",), False)],
)
def test_research_verify_steps_and_files_follow_the_tuning_slot(
    tmp_path: Path, overrides: tuple[str, ...], tuned: bool
) -> None:
    stack = load_stack(profile="research", overrides=list(overrides))
    target = tmp_path / "demo"
    render(project_answers(stack, target), target)
    package = target / "src" / "demo"
    plan = (package / "verify" / "plan.py").read_text(encoding="utf-8")
    assert '"wandb sweep"' in plan and (package / "pipeline" / "sweep.py").is_file()
    assert ('"wandb trials"' in plan) is tuned
    assert ('"tuning report"' in plan) is tuned
    assert (package / "pipeline" / "tune_report.py").is_file() is tuned
    assert (package / "verify" / "tuning.py").is_file() is tuned
    dvc = yaml.safe_load((target / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert dvc["sweep"]["outs"] == [{"wandb-sweeps/sweep.yaml": {"cache": False}}]
    assert ("reports/tuning" in dvc["tune"]["outs"]) if tuned else "tune" not in dvc
    pyproject = (target / "pyproject.toml").read_text(encoding="utf-8")
    assert '"wandb[sweeps]==0.31.0"' in pyproject and '"sweeps==0.2.0"' in pyproject


def test_neptune_comet_clearml_render_offline_with_their_pins(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    stack = load_stack(profile="startup", overrides=["trackers=neptune,comet,clearml"])
    render(project_answers(stack, target), target)
    package = target / "src" / "demo"
    for name in ("clearml", "comet", "neptune"):
        assert (package / "platform" / f"tracker_{name}.py").is_file()
        assert (package / "verify" / f"tracker_{name}.py").is_file()
        assert (target / "tests" / f"test_tracker_{name}.py").is_file()
    assert not (package / "platform" / "tracker_wandb.py").exists()
    assert (
        'ADAPTERS: tuple[str, ...] = ("tracker_clearml", "tracker_comet", "tracker_neptune")'
        in (package / "platform" / "trackers.py").read_text(encoding="utf-8")
    )
    pyproject = (target / "pyproject.toml").read_text(encoding="utf-8")
    for pin in ('"neptune-scale==0.30.0"', '"comet-ml==3.58.8"', '"clearml==2.1.12"'):
        assert pin in pyproject
    makefile = (target / "Makefile").read_text(encoding="utf-8")
    for line in (
        "NEPTUNE_MODE ?= offline",
        "COMET_START_ONLINE ?= false",
        "COMET_ERROR_TRACKING_ENABLE ?= false",
        "CLEARML_OFFLINE_MODE ?= 1",
    ):
        assert f"export {line}" in makefile
    assert all(
        f"{target}:" in makefile for target in ("neptune-sync", "comet-upload", "clearml-import")
    )
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "times out" in readme.lower() or "time out" in readme.lower()
    assert "169.254.169.254" in readme
