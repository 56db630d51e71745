"""Fixtures of the update tests: a private git config, a fixture template, a project.

Git runs with a private global config so the developer's settings (conflict style, hooks,
signing, default branch) cannot change the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack

from .helpers import FixtureTemplate


@pytest.fixture(autouse=True)
def private_git_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path_factory.mktemp("gitconfig") / "config"
    config.write_text("[user]\n\tname = Test User\n\temail = test@example.invalid\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def template(tmp_path: Path) -> FixtureTemplate:
    return FixtureTemplate(tmp_path / "template").build()


@pytest.fixture
def project(tmp_path: Path, template: FixtureTemplate) -> Path:
    """A project generated from the fixture template (package ``demo``), committed."""
    return create_project(load_stack(profile="startup"), tmp_path / "demo", template=template.root)
