"""Fresh machines: Python 3.11, git and make, no uv. Both Makefiles install a pinned uv.

The repository's Makefile (`make demo`, `make install`) and a generated project's (`make
setup`) each install uv==0.13.8 into their own .cache/uv-bootstrap when uv is not on PATH,
saying so in one line. Only the bootstrap rule runs here (`make uv`), with a PATH holding
nothing but python3, git, make and rm (pip fetches the uv wheel: network or pip's cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
UV_VERSION = "0.13.8"
ANNOUNCE = f"uv not found on PATH: installing uv=={UV_VERSION} into "


@pytest.fixture()
def bare_path(tmp_path: Path) -> str:
    """A directory with python3 (the base interpreter), git, make and rm: and no uv."""
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir()
    python = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    (bin_dir / "python3").symlink_to(python)
    for tool in ("git", "make", "rm"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(os.path.realpath(found))
    assert shutil.which("uv", path=str(bin_dir)) is None
    return str(bin_dir)


def bootstrap(directory: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"UV", "VIRTUAL_ENV", "PATH"}}
    env["PATH"] = path
    return subprocess.run(["make", "--no-print-directory", "uv"], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def assert_bootstraps(directory: Path, path: str) -> None:
    first = bootstrap(directory, path)
    assert first.returncode == 0, first.stdout + first.stderr
    announced = [line for line in first.stdout.splitlines() if line.startswith(ANNOUNCE)]
    assert announced == [f"{ANNOUNCE}{directory / '.cache' / 'uv-bootstrap'}"], first.stdout
    assert first.stdout.strip().splitlines()[-1].startswith(f"uv {UV_VERSION}"), first.stdout
    uv = directory / ".cache" / "uv-bootstrap" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split()[:2] == ["uv", UV_VERSION]
    again = bootstrap(directory, path)  # installed once: the next run just uses it
    assert again.returncode == 0 and ANNOUNCE not in again.stdout, again.stdout + again.stderr


def test_repository_makefile_bootstraps_uv(tmp_path: Path, bare_path: str) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, checkout / name)
    assert_bootstraps(checkout, bare_path)
    # `make install` then builds .venv with it (dry run: the commands, not the install).
    env = {**os.environ, "PATH": bare_path}
    env.pop("UV", None)
    dry = subprocess.run(["make", "-n", "install"], cwd=checkout, env=env, capture_output=True,
                         text=True, check=False)
    assert f"{checkout}/.cache/uv-bootstrap/bin/uv venv" in dry.stdout, dry.stdout + dry.stderr


def test_generated_makefile_bootstraps_uv(tmp_path: Path, bare_path: str) -> None:
    project = create_project(load_stack("startup"), tmp_path / "fresh")
    assert_bootstraps(project, bare_path)
    env = {**os.environ, "PATH": bare_path}
    env.pop("UV", None)
    dry = subprocess.run(["make", "-n", "setup"], cwd=project, env=env, capture_output=True,
                         text=True, check=False)
    uv = f"{project}/.cache/uv-bootstrap/bin/uv"
    assert f"{uv} venv" in dry.stdout and f"{uv} pip install" in dry.stdout, dry.stdout
    ignored = subprocess.run(["git", "check-ignore", ".cache/uv-bootstrap/bin/uv"], cwd=project,
                             capture_output=True, text=True, check=False)
    assert ignored.returncode == 0
