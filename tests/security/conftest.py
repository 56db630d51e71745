"""Session fixtures of the scanner suite: the tools, every built-in profile rendered once,
a canary project every scanner must flag, and each scanner's findings computed once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import builtin_profiles, load_stack
from tests.envs import REPO_ROOT
from tests.security.scanners import SCANNERS, Finding, Tools, find_tools

CANARY = "canary"

# Deliberately insecure files: each scanner must report its rules on them, or the scanner
# is not really running (a scanner that finds nothing would pass every other test).
CANARY_FILES = {
    "docker/app.Dockerfile": (
        "FROM python:latest\n"
        "RUN pip install requests\n"
        "CMD python app.py\n"
    ),
    ".github/workflows/bad.yml": (
        "on: pull_request_target\n"
        "permissions: write-all\n"
        "jobs:\n"
        "  greet:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }} ${{ nothing.here }}\n"
        "      - run: rm -rf $TARGET/*\n"
    ),
    "scripts/clean.sh": "#!/bin/sh\nrm -rf $1/*\n",
    "src/canary/app.py": (
        "import subprocess\n\n\n"
        "def run(command: str) -> None:\n"
        "    subprocess.call(command, shell=True)\n"
    ),
    # Built at run time so that this source file holds no key-shaped string itself.
    "config.ini": "[aws]\naws_access_key_id = " + "AKIA" + "Q3EGRIGHTHERE4U2" + "\n",
}

# What each scanner must report on the canary (a subset of what it finds there).
CANARY_RULES = {
    "bandit": {"B602"},
    "hadolint": {"DL3007", "DL3013", "DL3025"},
    "checkov": {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_7", "CKV2_GHA_1"},
    "zizmor": {"template-injection", "unpinned-uses", "dangerous-triggers",
               "excessive-permissions"},
    "actionlint": {"expression"},
    "shellcheck": {"SC2086"},
    "detect-secrets": {"AWS Access Key"},
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def tools() -> Tools:
    """Every scanner that can run here (built or located once per session)."""
    return find_tools()


def require(tools: Tools, scanner: str) -> None:
    """Fail (CI) or skip (elsewhere) naming why ``scanner`` cannot run."""
    if scanner in tools.missing:
        reason = f"{scanner} missing: {tools.missing[scanner]}"
        if in_ci():
            pytest.fail(f"{reason} (required under CI)")
        pytest.skip(reason)


def write_canary(root: Path) -> Path:
    for relative, text in CANARY_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "canary"], cwd=root, check=True)
    return root


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every built-in profile rendered once (git-initialised: scanners read tracked files),
    the scaffolder itself, and the canary."""
    root = tmp_path_factory.mktemp("scanned")
    rendered = {profile: create_project(load_stack(profile), root / profile)
                for profile in builtin_profiles()}
    canary = write_canary(tmp_path_factory.mktemp("canary-parent") / CANARY)
    return {**rendered, "scaffolder": REPO_ROOT, CANARY: canary}


class Findings:
    """Each scanner run once per session over all targets, on first request."""

    def __init__(self, tools: Tools, targets: dict[str, Path]) -> None:
        self.tools, self.targets = tools, targets
        self.cache: dict[str, list[Finding]] = {}

    def __getitem__(self, scanner: str) -> list[Finding]:
        require(self.tools, scanner)
        if scanner not in self.cache:
            self.cache[scanner] = SCANNERS[scanner](self.tools, self.targets)
        return self.cache[scanner]


@pytest.fixture(scope="session")
def findings(tools: Tools, targets: dict[str, Path]) -> Findings:
    return Findings(tools, targets)
