"""The foundation promise, as a new user lives it: wheel install, new, make setup, make verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.envs import uv, uv_env

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(command: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = uv_env()
    env.pop("VIRTUAL_ENV", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
    return result


def test_wheel_install_new_setup_verify(tmp_path: Path) -> None:
    # a copy of the repository, so the build sees exactly what a fresh clone has
    source = tmp_path / "src-copy"
    listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"],
                             cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    files = [name for name in listing.split("\0") if name]
    for name in files:
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    venv = tmp_path / "v"
    run([uv(), "venv", "--quiet", "--python", "3.11", str(venv)], tmp_path, 120)
    run([uv(), "pip", "install", "--quiet", "--compile-bytecode", "--python",
         str(venv / "bin" / "python"), str(source)], tmp_path, 600)
    cli = str(venv / "bin" / "mlops-scaffold")

    run([cli, "new", str(tmp_path / "demo"), "--profile", "startup", "--defaults"], tmp_path, 120)
    project = tmp_path / "demo"
    run(["make", "setup"], project, 900)
    result = run([cli, "verify", str(project)], tmp_path, 900)

    assert "Verification passed" in result.stdout
    report = json.loads((project / "reports" / "verify.json").read_text())
    assert report["ok"] is True
    names = [step["name"] for step in report["steps"]]
    assert len(names) >= 6
    assert all(step["ok"] for step in report["steps"])
    # verify stopped everything it started
    leftover = subprocess.run(["pgrep", "-f", str(project)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"
    assert os.path.isfile(project / "reports" / "drift.html")
