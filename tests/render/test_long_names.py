"""A long package name renders a project that passes its own ruff (100 columns).

The package name is written into imports, docstrings, commands and descriptions all over
the generated code; a 40-character name, and the longest one ``new`` accepts, must not push
a line past the generated project's ``line-length`` nor unsort an import block.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import MAX_NAME_LENGTH, create_project
from mlops_scaffold.stacks import builtin_profiles, load_stack
from tests.render.conftest import assert_ruff_clean

pytestmark = pytest.mark.render



#: Beyond the profiles: the components no profile picks (trackers, the S3 settings, the
#: other serving applications, CI systems, Mercurial).
EXTRA_STACKS = {
    "startup-trackers-s3": (
        "startup",
        ("trackers=wandb,neptune,comet,clearml,tensorboard", "artifact_store=s3", "data_remote=s3",
         "serving=bentoml", "ci=jenkins"),
    ),
    "startup-mlserver-hg": (
        "startup", ("serving=mlserver", "tuning=none", "vcs=hg", "ci=gitlab")
    ),
}
STACKS = {**{name: (name, ()) for name in builtin_profiles()}, **EXTRA_STACKS}


@pytest.mark.parametrize("length", [40, MAX_NAME_LENGTH])
@pytest.mark.parametrize("stack", STACKS)
def test_a_long_package_name_passes_the_generated_ruff(
    tmp_path: Path, stack: str, length: int
) -> None:
    name = ("churn_model_" + "with_a_long_name_" * 4)[:length]
    assert len(name) == length
    profile, overrides = STACKS[stack]
    project = create_project(
        load_stack(profile=profile, overrides=overrides), tmp_path / name, init_git=False
    )
    assert (project / "src" / name / "pipeline" / "train.py").is_file()
    deploy = project / ".github" / "workflows" / "deploy.yml"
    if deploy.is_file():  # an AWS role session name is 64 characters at most
        step = next(step for step in yaml.safe_load(deploy.read_text())["jobs"]["deploy"]["steps"]
                    if "role-session-name" in step.get("with", {}))
        assert len(step["with"]["role-session-name"]) <= 64, step
    assert_ruff_clean(project)
