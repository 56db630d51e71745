"""Property tests: random stack files, `--set` values and answers either load or are refused
with one line; what loads renders a project whose YAML, TOML and JSON parse and whose
Python compiles.

Deterministic (``derandomize=True``, no example database) so CI never flakes, and bounded:
the load-or-refuse properties run hundreds of cheap examples, the render property a few
(each render takes seconds).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops_scaffold.catalogue import catalogue
from mlops_scaffold.errors import ScaffoldError, StackError
from mlops_scaffold.stacks import (
    SETTING_KEYS,
    SLOT_KEYS,
    Stack,
    load_stack,
    stack_from_answers,
)

from .test_bad_inputs import Case, assert_one_error_line, run_main

CHEAP = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RENDERS = settings(
    max_examples=4,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
PORT_KEYS = tuple(key for key in SETTING_KEYS if key.endswith("_port"))
STARTUP = load_stack(profile="startup")


def load_or_refuse(**kwargs: Any) -> Stack | StackError:
    """Load a stack; a refusal must be a StackError with a one-line message."""
    try:
        stack = load_stack(**kwargs)
    except StackError as exc:
        assert exc.message.isprintable(), repr(exc.message)
        event("refused")
        return exc
    event("accepted")
    return stack


def check_cli_agrees(path: Path, outcome: Stack | StackError) -> None:
    """`show FILE` prints the same stack, or the same refusal as one `error:` line."""
    code, stdout, stderr = run_main(["show", str(path)])
    if isinstance(outcome, Stack):
        assert code == 0, stderr
        assert stderr == ""
        assert Stack.model_validate(yaml.safe_load(stdout)) == outcome
    else:
        assert_one_error_line(code, stdout, stderr, Case("show", (), 1, outcome.message))


# ---- stack files ---------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["mlflow", "none", "8000", "3.11", "startup", "~", "*x", "&a", "{{ x }}"]),
)
nested = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=60,
)

SLOTS: dict[str, tuple[str, ...]] = {
    slot: catalogue().choices(slot) for slot in catalogue().components
}
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    key: catalogue().choices(key) for key in catalogue().settings
}

slot_values = {slot: st.sampled_from([*SLOTS[slot], "nope"]) | scalars for slot in SLOT_KEYS}
setting_values = {
    key: (
        st.sampled_from([*SETTING_CHOICES[key], "nope"])
        if key in SETTING_CHOICES
        else st.integers(min_value=0, max_value=70000) | scalars
    )
    for key in SETTING_KEYS
}
stack_mappings = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["team", "Team", "t-1", ""]) | scalars,
        "description": st.text(max_size=40) | nested,
        "extends": st.sampled_from(["startup", "enterprise", "nope", "missing.yaml"]) | scalars,
        "slots": st.fixed_dictionaries({}, optional=slot_values) | nested,
        "settings": st.fixed_dictionaries({}, optional=setting_values) | nested,
        "extra": nested,
    },
)


def dumped(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def good_value(key: str) -> st.SearchStrategy[Any]:
    """Values a slot or setting accepts (ports in range, though they may clash)."""
    if key in SLOT_KEYS:
        return st.sampled_from(list(SLOTS[key]))
    if key in SETTING_CHOICES:
        return st.sampled_from(SETTING_CHOICES[key])
    if key == "aws_region":
        return st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"])
    return st.integers(min_value=1024, max_value=65535)


def any_value(key: str) -> st.SearchStrategy[Any]:
    return st.one_of(good_value(key), good_value(key), scalars, nested)


@st.composite
def near_valid_stacks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid stack (extending a profile) with a few keys changed, added or removed."""
    data: dict[str, Any] = {
        "name": draw(st.sampled_from(["team", "t-1", "lean_stack"])),
        "description": draw(st.text(max_size=40)),
        "extends": draw(st.sampled_from(["startup", "enterprise", "aws", "kubernetes"])),
        "slots": {},
        "settings": {},
    }
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        key = draw(st.sampled_from([*SLOT_KEYS, *SETTING_KEYS]))
        section = "slots" if key in SLOT_KEYS else "settings"
        data[section][key] = draw(good_value(key))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        where = draw(st.sampled_from(["top", "slots", "settings", "drop"]))
        if where == "drop":
            data.pop(draw(st.sampled_from(sorted(data))), None)
        else:
            key = draw(st.sampled_from([*SLOT_KEYS, *SETTING_KEYS, "name", "extends", "x"]))
            target = data if where == "top" else data.setdefault(where, {})
            if isinstance(target, dict):
                target[key] = draw(any_value(key) if key in SLOT_KEYS + SETTING_KEYS else nested)
    return data


def corrupted(text: str) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, len(text)), st.text(max_size=8)).map(
        lambda cut: text[: cut[0]] + cut[1] + text[cut[0] + len(cut[1]) :]
    )


stack_texts = st.one_of(
    near_valid_stacks().map(dumped),
    near_valid_stacks().map(dumped),
    near_valid_stacks().map(dumped).flatmap(corrupted),
    stack_mappings.map(dumped),
    nested.map(dumped),
    st.text(max_size=400),
)
stack_bytes = st.one_of(
    near_valid_stacks().map(dumped).map(str.encode),
    near_valid_stacks()
    .map(dumped)
    .map(str.encode)
    .flatmap(
        lambda raw: st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=4)).map(
            lambda cut: raw[: cut[0]] + cut[1] + raw[cut[0] + len(cut[1]) :]
        )
    ),
    st.binary(max_size=600),
)


@CHEAP
@given(text=stack_texts)
def test_random_stack_text_loads_or_is_refused_in_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome = load_or_refuse(stack_file=path)
    check_cli_agrees(path, outcome)


@CHEAP
@given(data=stack_bytes)
def test_random_stack_bytes_load_or_are_refused_in_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "stack.yaml"
    path.write_bytes(data)
    outcome = load_or_refuse(stack_file=path)
    check_cli_agrees(path, outcome)


@settings(CHEAP, max_examples=30)
@given(depth=st.integers(min_value=1, max_value=3000), kind=st.sampled_from("[{-"))
def test_nesting_of_any_depth_is_refused_or_loaded(tmp_path: Path, depth: int, kind: str) -> None:
    opening = {
        "[": "[" * depth + "]" * depth,
        "{": "{a: " * depth + "1" + "}" * depth,
        "-": "".join(f"{'  ' * i}- \n" for i in range(min(depth, 400))),
    }[kind]
    path = tmp_path / "stack.yaml"
    path.write_text("name: team\ndescription: x\nextends: startup\nsettings: " + opening + "\n")
    outcome = load_or_refuse(stack_file=path)
    assert isinstance(outcome, StackError)


# ---- --set values ----------------------------------------------------------------------

override_texts = st.one_of(
    st.sampled_from([*SLOT_KEYS, *SETTING_KEYS]).flatmap(
        lambda key: good_value(key).map(lambda value: f"{key}={value}")
    ),
    st.sampled_from([*SLOT_KEYS, *SETTING_KEYS]).flatmap(
        lambda key: good_value(key).map(lambda value: f" {key} = {value} ")
    ),
    st.builds(
        lambda key, value: f"{key}={value}",
        st.sampled_from([*SLOT_KEYS, *SETTING_KEYS]),
        st.text(max_size=30) | st.integers(-5, 70000).map(str),
    ),
    st.text(max_size=40),
)


@CHEAP
@given(overrides=st.lists(override_texts, min_size=1, max_size=3))
def test_random_set_values_load_or_are_refused_in_one_line(
    tmp_path: Path, overrides: list[str]
) -> None:
    outcome = load_or_refuse(profile="startup", overrides=overrides)
    if isinstance(outcome, Stack):
        last = {
            key.strip(): value.strip()
            for key, _, value in map(str.partition, overrides, "=" * len(overrides))
        }
        for key, value in last.items():
            section = outcome.slots if key in SLOT_KEYS else outcome.settings
            got = getattr(section, key)
            if isinstance(got, tuple):  # a multiple slot: a,b (the implied value dropped)
                implied = outcome.slots.model_dump().get(catalogue().slots[key].implied_by or "")
                assert set(got) == {v.strip() for v in value.split(",")} - {"", implied}
                continue
            assert str(got) in {value, value.lstrip("0")}
        return
    # The refusal through the CLI: refused before anything is rendered or written.
    args = ["new", str(tmp_path / "app"), "-p", "startup"]
    for text in overrides:
        args += ["--set", text]
    code, stdout, stderr = run_main(args)
    assert_one_error_line(code, stdout, stderr, Case("set", (), 1, outcome.message))
    assert list(tmp_path.iterdir()) == []


# ---- answers files ---------------------------------------------------------------------

VALID_ANSWERS = {**STARTUP.to_answers(), "project_name": "proj", "_commit": "None"}


@CHEAP
@given(
    changes=st.sampled_from([*SLOT_KEYS, *SETTING_KEYS, "profile", "other"]).flatmap(
        lambda key: (any_value(key) if key in SLOT_KEYS + SETTING_KEYS else nested).map(
            lambda value: {key: value}
        )
    )
    | st.just({}),
    removed=st.sets(st.sampled_from([*SLOT_KEYS, *SETTING_KEYS, "profile"]), max_size=2),
)
def test_random_answers_load_or_are_refused_in_one_line(
    changes: dict[str, Any], removed: set[str]
) -> None:
    answers = {
        key: value for key, value in {**VALID_ANSWERS, **changes}.items() if key not in removed
    }
    try:
        stack = stack_from_answers(answers)
    except StackError as exc:
        assert exc.message.isprintable(), repr(exc.message)
        assert exc.message.startswith(".copier-answers.yml: ")
        event("refused")
        return
    event("accepted")
    answers_again = stack.to_answers()
    # A multiple slot's members come back normalised (a string is one member, catalogue
    # order, mlflow dropped): compared by the round trip below.
    multiple = {key for key in SLOT_KEYS if catalogue().is_multiple(key)}
    for key in (set(SLOT_KEYS) | set(SETTING_KEYS)) - multiple:
        assert answers_again[key] == answers.get(key, answers_again[key])
    assert stack_from_answers(answers_again).to_answers() == answers_again


# ---- what loads renders a well-formed project -------------------------------------------

ports = st.lists(
    st.integers(min_value=1024, max_value=65535),
    min_size=len(PORT_KEYS),
    max_size=len(PORT_KEYS),
    unique=True,
)
valid_stacks = st.builds(
    lambda slots, choices, chosen_ports, region: {
        "name": "random",
        "description": "generated by hypothesis",
        "slots": slots,
        "settings": {
            **choices,
            **dict(zip(PORT_KEYS, chosen_ports, strict=True)),
            "aws_region": region,
        },
    },
    st.fixed_dictionaries({slot: st.sampled_from(list(SLOTS[slot])) for slot in SLOT_KEYS}),
    st.fixed_dictionaries(
        {key: st.sampled_from(values) for key, values in SETTING_CHOICES.items()}
    ),
    ports,
    st.from_regex(r"[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]", fullmatch=True),
)
project_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,30}", fullmatch=True)


def parse_every_file(project: Path) -> dict[str, int]:
    """Parse every YAML, TOML and JSON file and compile every Python file; count them."""
    counts = {"yaml": 0, "toml": 0, "json": 0, "python": 0}
    for path in sorted(project.rglob("*")):
        if not path.is_file() or ".git" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(project))
        if path.suffix in {".yaml", ".yml"}:
            list(yaml.load_all(text, Loader=_TaggedLoader))
            counts["yaml"] += 1
        elif path.suffix == ".toml":
            tomllib.loads(text)
            counts["toml"] += 1
        elif path.suffix == ".json":
            json.loads(text)
            counts["json"] += 1
        elif path.suffix == ".py":
            compile(text, where, "exec")
            counts["python"] += 1
    return counts


class _TaggedLoader(yaml.SafeLoader):
    """SafeLoader that accepts application tags (CloudFormation's !Ref...) as plain nodes."""


_TaggedLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@pytest.mark.render
@RENDERS
@given(raw=valid_stacks, name=project_names)
def test_accepted_stacks_render_parseable_projects(
    tmp_path_factory: pytest.TempPathFactory, raw: dict[str, Any], name: str
) -> None:
    from mlops_scaffold.project import create_project

    folder = tmp_path_factory.mktemp("prop")
    path = folder / "stack.yaml"
    path.write_text(dumped(raw), encoding="utf-8")
    outcome = load_or_refuse(stack_file=path)
    if isinstance(outcome, StackError):
        return  # refused (e.g. no such combination) with one line: checked above
    try:
        project = create_project(outcome, folder / name, init_git=False)
    except ScaffoldError as exc:  # e.g. a name whose package is a keyword: one line, no files
        assert exc.message.isprintable(), repr(exc.message)
        assert sorted(item.name for item in folder.iterdir()) == ["stack.yaml"]
        event("refused at new")
        return
    event("rendered")
    counts = parse_every_file(project)
    assert counts["yaml"] > 3 and counts["toml"] >= 1 and counts["python"] > 5, counts
