from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import Stack, builtin_profiles, load_stack

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every built-in profile, plus the variants that switch optional components off.
VARIANTS: dict[str, tuple[str | None, str | None, tuple[str, ...]]] = {
    **{profile: (profile, None, ()) for profile in builtin_profiles()},
    # MLServer as the serving application (its own environment: not built by the tests)
    "startup-lean": ("startup", None, ("tuning=none", "ci=none", "serving=mlserver")),
    # The S3 bucket without the shared platform: MinIO and MLflow's proxied artifacts on
    # SQLite's MLflow (artifact_store=s3 owns them, not tracking_backend=postgresql).
    "startup-s3": ("startup", None, ("artifact_store=s3", "data_remote=s3")),
    "kubernetes-seldon": ("kubernetes", None, ("serving_platform=seldon", "tuning=none")),
    "kubernetes-deployment": ("kubernetes", None, ("serving_platform=deployment",)),
    "example-custom-stack": (None, str(REPO_ROOT / "examples" / "custom-stack.yaml"), ()),
}


def variant_stack(variant: str) -> Stack:
    profile, stack_file, overrides = VARIANTS[variant]
    return load_stack(profile, Path(stack_file) if stack_file else None, overrides)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Render every variant once per session (git-initialised, as users get them)."""
    root = tmp_path_factory.mktemp("rendered")
    return {
        variant: create_project(variant_stack(variant), root / variant.replace("-", "_"))
        for variant in VARIANTS
    }


def compose_config(project: Path) -> subprocess.CompletedProcess[str] | None:
    """``docker-compose config -q`` of ``project``; None when docker-compose is missing.

    The secrets compose requires (``${VAR:?...}``) get values, as ``make secrets`` gives
    them in ``.env``. Under ``CI=true`` docker-compose is required.
    """
    executable = shutil.which("docker-compose")
    if executable is None:
        assert os.environ.get("CI") != "true", "docker-compose is required under CI=true"
        return None
    text = (project / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    env = {**os.environ, "COMPOSE_PROJECT_NAME": "check",
           **{name: "a-generated-secret-value" for name in required}}
    return subprocess.run([executable, "-f", "docker-compose.yml", "config", "-q"],
                          cwd=project, capture_output=True, text=True, env=env, check=False)


REPO_RUFF = Path(sys.executable).parent / "ruff"


def assert_ruff_clean(project: Path) -> None:
    """The repository's ruff (the generated projects pin the same version) finds nothing."""
    lint = subprocess.run(
        [str(REPO_RUFF), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout[-3000:]
