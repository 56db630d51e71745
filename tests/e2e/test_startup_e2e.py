"""The foundation promise, as a new user lives it: wheel install, new, make setup, make verify.

The one `verify` run (pipeline, MLflow server, serving, drift) is also the offline proof:
every Python process it starts loads tests/security/netaudit/sitecustomize.py, which logs
each attempt to reach a non-loopback address or to look up a non-local name. CI markers
(CI, PYTEST_CURRENT_TEST, ...) are removed from that run's environment: MLflow turns its
telemetry off by itself when it sees them, and the run must behave as on a user's machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.envs import uv, uv_env

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
NETAUDIT = REPO_ROOT / "tests" / "security" / "netaudit"
# Variables by which tools detect CI or a test run (MLflow's list, mlflow/telemetry/utils.py).
CI_MARKERS = ("CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI",
              "JENKINS_URL", "TRAVIS", "TF_BUILD", "BITBUCKET_BUILD_NUMBER",
              "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION")


def run(command: list[str], cwd: Path, timeout: int,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(env or uv_env())
    env.pop("VIRTUAL_ENV", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
    return result


def audited_env(log: Path) -> dict[str, str]:
    """The environment of a user's shell, with the network audit loaded in every Python."""
    env = {key: value for key, value in uv_env().items() if key not in CI_MARKERS}
    for key in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "DVC_NO_ANALYTICS"):
        env.pop(key, None)  # the project must set its opt-outs itself
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETAUDIT), env.get("PYTHONPATH")]))
    env["NETWORK_AUDIT_LOG"] = str(log)
    return env


@dataclass(frozen=True)
class Verified:
    project: Path
    stdout: str
    network_log: Path
    cli: str


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> Verified:
    """Wheel install, new, make setup and one audited verify of the startup project."""
    tmp_path = tmp_path_factory.mktemp("startup-e2e")
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
    log = tmp_path / "network.jsonl"
    result = run([cli, "verify", str(project)], tmp_path, 900, audited_env(log))
    return Verified(project, result.stdout, log, cli)


def test_wheel_install_new_setup_verify(verified: Verified) -> None:
    project = verified.project
    assert "Verification passed" in verified.stdout
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


def test_pipeline_serving_and_verify_stay_on_loopback(verified: Verified, tmp_path: Path) -> None:
    # The audit sees what it must: a lookup of a public name in a process it is loaded in.
    probe_log = tmp_path / "probe.jsonl"
    probe = ("import socket\n"
             "try: socket.getaddrinfo('config.mlflow-telemetry.io', 443)\n"
             "except OSError: pass")
    subprocess.run([sys.executable, "-c", probe], env=audited_env(probe_log), check=True,
                   timeout=60)
    assert "config.mlflow-telemetry.io" in probe_log.read_text()

    entries = [json.loads(line) for line in verified.network_log.read_text().splitlines()]
    started = [" ".join(entry["argv"]) for entry in entries if entry["call"] == "start"]
    # It was loaded in the processes of the run: verify, the stages, MLflow and serving.
    for process in ("verify", "train", "mlflow", "serving"):
        assert any(process in argv for argv in started), (process, started)
    outbound = [entry for entry in entries if entry["call"] != "start"]
    assert outbound == [], json.dumps(outbound, indent=1)[:6000]
