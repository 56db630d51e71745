"""The built-in renderer's own promises: compile once, skip what is not selected, refuse
what it does not implement, keep compiled code across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.answers import project_answers
from mlops_scaffold.errors import RenderError
from mlops_scaffold.render import engine, render, template_questions
from mlops_scaffold.render.engine import compiler_for, render_template
from mlops_scaffold.render.jinja import CodeCache, Compiler
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import load_stack


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLOPS_SCAFFOLD_CACHE_DIR", str(cache))
    monkeypatch.setattr(engine, "_COMPILERS", {})
    return cache


def write_template(root: Path, config: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "copier.yml").write_text(config)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


CONFIG = """\
_subdirectory: project
_exclude:
  - "{% if not extra %}extra{% endif %}"
extra:
  type: bool
  default: false
name:
  default: demo
"""


def test_files_that_are_not_selected_are_never_read_or_compiled(tmp_path: Path) -> None:
    template = write_template(
        tmp_path / "t",
        CONFIG,
        {
            "project/README.md.jinja": "# {{ name }}\n",
            "project/extra/broken.py.jinja": "{% if %}",  # invalid Jinja: must not compile
            "components/serving/x/files/app.py.jinja": "{% for %}",  # outside _subdirectory
        },
    )
    result = render_template(template, {}, tmp_path / "out")
    assert result.files == ("README.md",)
    assert (tmp_path / "out" / "README.md").read_text() == "# demo\n"
    with pytest.raises(RenderError, match=r"extra/broken.py.jinja: line 1"):
        render_template(template, {"extra": True}, tmp_path / "out2")


def test_each_source_is_compiled_once_per_process(tmp_path: Path) -> None:
    answers = project_answers(load_stack(profile="startup"), tmp_path / "churn-demo")
    render_template(template_dir(), answers, tmp_path / "one" / "churn-demo")
    compiler = compiler_for(template_dir().resolve(), {"keep_trailing_newline": True})
    first = compiler.compilations
    # Every file, path part, exclude pattern and question expression: each distinct
    # source once, though {{ package_name }} alone names many paths.
    assert 0 < first < 250
    render_template(template_dir(), answers, tmp_path / "two" / "churn-demo")
    assert compiler.compilations == first


def test_compiled_code_is_reused_by_the_next_process(tmp_path: Path, private_cache: Path) -> None:
    source = "{% for x in items %}{{ x | upper }}{% endfor %}\n"
    first = Compiler(tmp_path, {"keep_trailing_newline": True})
    assert first.render(source, {"items": ["a", "b"]}, "t") == "AB\n"
    first.save()
    second = Compiler(tmp_path, {"keep_trailing_newline": True})
    assert second.render(source, {"items": ["c"]}, "t") == "C\n"
    assert (first.compilations, second.compilations) == (1, 0)
    other_options = Compiler(tmp_path, {"keep_trailing_newline": False})
    assert other_options.render(source, {"items": ["d"]}, "t") == "D"
    assert other_options.compilations == 1


def test_a_damaged_cache_only_means_compiling_again(tmp_path: Path, private_cache: Path) -> None:
    compiler = Compiler(tmp_path, {})
    compiler.render("{{ 1 + 1 }}", {}, "t")
    compiler.save()
    (cache_file,) = private_cache.iterdir()
    cache_file.write_bytes(b"\x00garbage")
    again = Compiler(tmp_path, {})
    assert again.render("{{ 1 + 1 }}", {}, "t") == "2"
    assert again.compilations == 1


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SCAFFOLD_CACHE_DIR", "")
    assert CodeCache.default("salt") is None
    compiler = Compiler(tmp_path, {})
    assert compiler.render("{{ 'x' }}", {}, "t") == "x"
    compiler.save()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("_jinja_extensions", ["jinja2_time.TimeExtension"]), ("_preserve_symlinks", True),
     ("_external_data", {"x": "x.yml"})],
)
def test_copier_settings_it_does_not_implement_are_refused(
    setting: str, value: object, tmp_path: Path
) -> None:
    config = yaml.safe_dump({setting: value, "name": "demo"})
    template = write_template(tmp_path / "t", config, {"README.md": "x\n"})
    with pytest.raises(RenderError, match=f"{setting} is a Copier setting"):
        render_template(template, {}, tmp_path / "out")


def test_a_multiselect_answer_is_a_list_of_choices(tmp_path: Path) -> None:
    """As Copier: a list (or a YAML list in a string) of choices; a bare value is refused."""
    config = "tags:\n  type: str\n  multiselect: true\n  choices: [a, b]\n  default: a\n"
    files = {"README.md.jinja": "{{ tags | join(',') }}\n"}
    template = write_template(tmp_path / "t", config, files)
    with pytest.raises(RenderError, match="Invalid answer 'a' to multiselect question 'tags'"):
        render_template(template, {}, tmp_path / "out")
    render_template(template, {"tags": ["b", "a"]}, tmp_path / "ok")
    assert (tmp_path / "ok" / "README.md").read_text() == "a,b\n"  # choice order


def test_a_newer_min_copier_version_is_refused(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", "_min_copier_version: '10.0'\n", {})
    with pytest.raises(RenderError, match=r"_min_copier_version 10\.0 is newer"):
        render_template(template, {}, tmp_path / "out")


def test_an_unknown_filter_names_itself(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", "", {"a.txt.jinja": "{{ x | to_json }}\n"})
    with pytest.raises(RenderError, match="No filter named 'to_json'"):
        render_template(template, {}, tmp_path / "out")


def test_a_rendered_path_cannot_leave_the_project(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", "where: ..\n", {"{{ where }}/x.txt": "x\n"})
    with pytest.raises(RenderError, match="outside the project"):
        render_template(template, {}, tmp_path / "out" / "p")
    assert not (tmp_path / "out" / "x.txt").exists()


def test_a_symlink_out_of_the_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret\n")
    template = write_template(tmp_path / "t", "", {})
    (template / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RenderError, match="symlink points outside the template"):
        render_template(template, {}, tmp_path / "out")


def test_render_without_copier_and_answers_record_the_template(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mlops_scaffold.answers import project_answers\n"
        "from mlops_scaffold.render import render\n"
        "from mlops_scaffold.stacks import load_stack\n"
        f"target = Path({str(tmp_path / 'churn-demo')!r})\n"
        "render(project_answers(load_stack(profile='startup'), target), target)\n"
        "print('COPIER' if 'copier' in sys.modules else 'NO-COPIER')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "NO-COPIER"
    answers = yaml.safe_load((tmp_path / "churn-demo" / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(template_dir().resolve())
    assert "package_name" not in answers  # when: false, as Copier records it
    assert answers["project_name"] == "churn-demo"


def test_template_questions_come_from_the_config(tmp_path: Path) -> None:
    questions = template_questions()
    assert questions["package_name"]["when"] is False
    assert questions["mlflow_port"]["type"] == "int"
    render(
        {"project_name": "x-y", "profile": "startup", "scaffold_version": "0"},
        tmp_path / "x-y",
    )
    assert (tmp_path / "x-y" / "src" / "x_y" / "__init__.py").is_file()


def _tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file below ``root``, through links."""
    import os

    return {Path(d, name).relative_to(root).as_posix(): Path(d, name).read_bytes()
            for d, _, names in os.walk(root, followlinks=True) for name in names}


def test_a_template_without_its_project_links_renders_the_same(tmp_path: Path) -> None:
    """A wheel keeps a linked file at one path only: owned files come from their folders."""
    import shutil

    from mlops_scaffold.render.interactive import _place_owned_files

    unlinked = tmp_path / "unlinked"
    shutil.copytree(template_dir(), unlinked, symlinks=True)
    links = [path for path in (unlinked / "project").rglob("*") if path.is_symlink()]
    assert links, "the template links its owned files into project/"
    for link in links:
        link.unlink()
    stack = load_stack(profile="kubernetes", overrides=["serving_platform=seldon"])
    answers = project_answers(stack, tmp_path / "demo")
    render(answers, tmp_path / "linked", template=template_dir())
    render(answers, tmp_path / "from-folders", template=unlinked)
    linked, from_folders = _tree(tmp_path / "linked"), _tree(tmp_path / "from-folders")
    assert "deploy/k8s/base/seldon.yaml" in linked
    linked.pop(".copier-answers.yml")
    from_folders.pop(".copier-answers.yml")
    assert from_folders == linked
    # The interactive path copies the template for Copier: the owned files are put back.
    _place_owned_files(unlinked)
    assert _tree(unlinked / "project") == _tree(template_dir() / "project")
