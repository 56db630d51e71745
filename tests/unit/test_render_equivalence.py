"""The built-in renderer writes exactly what ``copier copy`` writes, byte for byte.

Copier renders a scratch copy of the template (a plain directory, as ``render`` did with
Copier), the engine renders the same copy with the same answers; the trees must have the
same files, directories, bytes and permission bits. Covered: every built-in profile and
three ``--set`` combinations; the update tests' fixture template; and a
template made here to exercise what the project template does not use yet (modes,
symlinks, empty files and directories, binary files, templated and conditional names,
templated siblings, glob/directory/negated/multi-line excludes, every question type,
choices, ``when: false``, secret questions, CRLF sources). Cost: one Copier render per
case, ~1.5 s each on a quiet machine (10 renders).
"""

from __future__ import annotations

import os
import shutil
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest

from mlops_scaffold.answers import project_answers
from mlops_scaffold.errors import RenderError
from mlops_scaffold.render.engine import render_template
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import builtin_profiles, load_stack

from ..update.helpers import FixtureTemplate

VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{profile: (profile, ()) for profile in builtin_profiles()},
    "startup-lean-ports": ("startup", ("tuning=none", "ci=none", "mlflow_port=5123")),
    "enterprise-gx-ray": ("enterprise", ("validation=great-expectations", "tuning=ray-tune")),
    "kubernetes-seldon": ("kubernetes", ("serving_platform=seldon", "tuning=none")),
    # a multiple slot: Copier's multiselect answer (a list) drives contributions and excludes
    "startup-trackers": ("startup", ("trackers=wandb,neptune,comet,clearml,tensorboard",)),
}


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user Copier settings for Copier; a private compile cache for the engine."""
    settings = tmp_path_factory.mktemp("copier") / "settings.yml"
    settings.write_text("{}\n")
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
    monkeypatch.setenv("MLOPS_SCAFFOLD_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped template as a plain directory (what Copier is given)."""
    target = tmp_path_factory.mktemp("template") / "template"
    shutil.copytree(template_dir(), target, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    return target


def tree(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry below ``root``: kind, content (or link target), permission bits."""
    entries: dict[str, tuple[str, bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            entries[relative] = ("link", os.readlink(path), 0)
        elif path.is_dir():
            entries[relative] = ("dir", b"", mode)
        else:
            entries[relative] = ("file", path.read_bytes(), mode)
    return entries


def copier_copy(template: Path, answers: dict[str, Any], destination: Path) -> None:
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template),
            destination,
            data=answers,
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=True,
            skip_tasks=True,
            cleanup_on_error=False,
        )


def assert_same_render(template: Path, answers: dict[str, Any], root: Path) -> set[str]:
    ours, theirs = root / "engine" / "churn-demo", root / "copier" / "churn-demo"
    render_template(template, answers, ours)
    copier_copy(template, answers, theirs)
    expected, actual = tree(theirs), tree(ours)
    assert sorted(actual) == sorted(expected)
    different = [name for name in expected if actual[name] != expected[name]]
    assert different == []
    return set(expected)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_profile_renders_as_copier_does(
    variant: str, snapshot: Path, tmp_path: Path
) -> None:
    profile, overrides = VARIANTS[variant]
    stack = load_stack(profile, overrides=list(overrides))
    answers = project_answers(stack, tmp_path / "churn-demo")
    names = assert_same_render(snapshot, answers, tmp_path)
    assert ".copier-answers.yml" in names
    assert "src/churn_demo/__init__.py" in names


def test_fixture_template_renders_as_copier_does(tmp_path: Path) -> None:
    template = FixtureTemplate(tmp_path / "fixture").build()
    answers = project_answers(load_stack(profile="startup", overrides=["tuning=none"]),
                              tmp_path / "My-Project")
    names = assert_same_render(template.root, answers, tmp_path)
    assert "assets/logo.bin" in names
    assert "src/my_project/pipeline/tune.py" not in names


FEATURES_CONFIG = """\
_subdirectory: "{{ 'proj' }}"
_answers_file: ".answers-{{ name }}.yml"
_secret_questions: [token]
_exclude:
  - "{% if not with_docs %}docs{% endif %}"
  - "*.tmp"
  - "keep-dir/"
  - "/anchored.txt"
  - "{% if flavour == 'b' %}flavour-a.txt\\nflavour-a2.txt{% endif %}"
  - "lib/**/generated.py"
  - "!lib/keep/generated.py"
name:
  type: str
  default: Demo-Thing
slug:
  default: "{{ name | lower | replace('-', '_') }}"
  when: false
count:
  type: int
  default: 3
  validator: "{% if count < 1 %}count must be positive{% endif %}"
ratio:
  type: float
  default: 0.5
with_docs:
  type: bool
  default: false
flavour:
  type: str
  choices: {Flavour A: a, Flavour B: b}
  default: a
extras:
  type: yaml
  default: "[one, two]"
settings:
  type: json
  default: '{"k": 1}'
token:
  type: str
  default: s3cret
hidden_default:
  when: "{{ count > 100 }}"
  default: "computed-{{ count }}"
"""


def build_features_template(root: Path) -> Path:
    """A template using what Copier offers beyond what the project template uses today."""
    root.mkdir(parents=True)
    (root / "copier.yml").write_text(FEATURES_CONFIG)
    (root / "components" / "broken").mkdir(parents=True)
    (root / "components" / "broken" / "x.jinja").write_text("{% if %}")  # outside proj/
    proj = root / "proj"
    files: dict[str, str | bytes] = {
        "README.md.jinja": "# {{ name }}\r\ncount={{ count }} ratio={{ ratio }}\r\n",
        "{{ slug }}/__init__.py.jinja": '"""{{ slug }}"""\n{{ extras | join(",") }}\n',
        "{{ slug }}/plain.txt": "{{ not rendered }}\n",
        "{% if with_docs %}docs{% endif %}/index.md": "docs\n",
        "docs/guide.md.jinja": "{{ name }}\n",
        "empty.txt": "",
        "empty-template.txt.jinja": "",
        "both.txt": "plain twin\n",
        "both.txt.jinja": "templated twin {{ flavour }}\n",
        "logo.bin": bytes(range(256)),
        "scratch.tmp": "x\n",
        "keep-dir/inside.txt": "excluded by a directory pattern\n",
        "anchored.txt": "excluded at the root only\n",
        "sub/anchored.txt": "kept\n",
        "flavour-a.txt": "a\n",
        "flavour-a2.txt": "a2\n",
        "lib/x/generated.py": "drop\n",
        "lib/keep/generated.py": "keep\n",
        "info.txt.jinja": (
            "{{ _copier_conf.answers_file }} {{ _folder_name }} {{ settings.k }} "
            "{{ hidden_default }} {{ 'ab12' | regex_search('[0-9]+') }}\n"
            "{{ _copier_answers | to_nice_yaml }}"
        ),
        "{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
        "script.sh": "#!/bin/sh\necho hi\n",
        "tool.py.jinja": "#!/usr/bin/env python3\nprint({{ count }})\n",
        "real/target.txt": "target\n",
    }
    for name, content in files.items():
        path = proj / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode())
    (proj / "empty-dir").mkdir()
    (proj / "{% if with_docs %}never{% endif %}").mkdir()
    (proj / "script.sh").chmod(0o755)
    (proj / "tool.py.jinja").chmod(0o750)
    (proj / "README.md.jinja").chmod(0o600)
    (proj / "link-to-file.txt").symlink_to("real/target.txt")
    (proj / "link-to-dir").symlink_to("real")
    return root


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"name": "Other-Name", "with_docs": True, "flavour": "b", "count": 7, "ratio": "2.5"},
    ],
    ids=["defaults", "given"],
)
def test_copier_features_render_as_copier_does(answers: dict[str, Any], tmp_path: Path) -> None:
    template = build_features_template(tmp_path / "features")
    names = assert_same_render(template, answers, tmp_path)
    assert "script.sh" in names and "link-to-file.txt" in names and "empty-dir" in names
    assert "keep-dir" in names and "keep-dir/inside.txt" not in names
    assert "lib/keep/generated.py" in names and "lib/x/generated.py" not in names


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"count": 0}, "Validation error for question 'count': count must be positive"),
        ({"flavour": "c"}, "Invalid choice for 'flavour': 'c' is not in ['a', 'b']"),
    ],
)
def test_rejected_answers_say_what_copier_says(
    overrides: dict[str, Any], message: str, tmp_path: Path
) -> None:
    template = build_features_template(tmp_path / "features")
    with pytest.raises(ValueError, match=r"Validation error|Invalid choice") as copier_error:
        copier_copy(template, overrides, tmp_path / "copier" / "x")
    assert str(copier_error.value).strip().splitlines()[0] == message
    with pytest.raises(RenderError) as ours:
        render_template(template, overrides, tmp_path / "engine" / "x")
    assert ours.value.message == f"template rejected the answers: {message}"
