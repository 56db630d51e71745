"""Helpers of the update tests: a tiny Copier template with the real question names, git.

Each test gets its own copy of the fixture template and changes it in place to make a
"new template version"; projects are created from it with ``create_project(template=...)``
and updated with ``update_project(template=...)``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from mlops_scaffold.gitutil import git_env
from mlops_scaffold.render import template_questions
from mlops_scaffold.resources import template_dir

README = "# {{ project_name }}\n\nLine one.\nLine two.\nLine three.\nLine four.\nLine five.\n"
LOGO = bytes(range(256)) * 4
FILES: dict[str, str | bytes] = {
    "README.md.jinja": README,
    "settings.txt.jinja": "serving_port = {{ serving_port }}\nmlflow_port = {{ mlflow_port }}\n",
    "notes.txt": "Notes shipped by the template.\n",
    "assets/logo.bin": LOGO,
    "src/{{ package_name }}/__init__.py": '"""The package."""\n',
    "src/{{ package_name }}/tune.py.jinja": '"""Tuning with {{ tuning }}."""\n',
}
EXCLUDE = ["{% if tuning == 'none' %}src/{{ package_name }}/tune.py{% endif %}"]


class FixtureTemplate:
    """A Copier template in a temp dir that tests edit to make new versions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"

    def build(self) -> FixtureTemplate:
        config = {
            "_subdirectory": "project",
            "_templates_suffix": ".jinja",
            "_answers_file": ".copier-answers.yml",
            "_envops": {"keep_trailing_newline": True},
            "_exclude": EXCLUDE,
            **template_questions(),
        }
        self.root.mkdir(parents=True)
        (self.root / "copier.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        answers = "{{ _copier_conf.answers_file }}.jinja"
        self.write(answers, (template_dir() / "project" / answers).read_text())
        for name, content in FILES.items():
            self.write(name, content)
        return self

    def write(self, name: str, content: str | bytes) -> None:
        path = self.project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    def read(self, name: str) -> str:
        return (self.project / name).read_text(encoding="utf-8")

    def replace(self, name: str, old: str, new: str) -> None:
        text = self.read(name)
        assert old in text, (name, old)
        self.write(name, text.replace(old, new))

    def remove(self, name: str) -> None:
        (self.project / name).unlink()


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {result.stderr}")
    return result.stdout


def commit_all(cwd: Path, message: str = "my change") -> str:
    run_git(cwd, "add", "-A")
    run_git(cwd, "commit", "-q", "-m", message)
    return run_git(cwd, "rev-parse", "HEAD").strip()


def status(cwd: Path) -> str:
    return run_git(cwd, "status", "--porcelain")


def rendered_readme(name: str = "demo") -> str:
    return README.replace("{{ project_name }}", name)
