"""The foundation promise, as a new user lives it: wheel install, new, then the project's CI.

The generated GitHub Actions workflow's jobs (lint, test, verify) run on this machine in
the order their ``needs:`` give, each from a fresh clone of the new project (carrying
over only the ``.venv`` the lint job's ``make setup`` built: each job's ``make setup`` still
runs, and two more builds would cost CI minutes and prove nothing new), with the
workflow's commands and environment (tests/ci_systems/github_actions.py: a new action or
an expression it cannot evaluate fails here). So ``make setup``, ``make lint``, ``make
test`` and ``make verify`` are the workflow's own steps, and the verify step is driven by
``mlops-scaffold verify .``, which runs that same ``make verify`` and reads its report.

The test job's ``make test`` is the startup project's whole generated suite: once it
passed, the render tier (test_render.py) skips the modules of equal fingerprint
(tests/generated_suite.py) instead of running them a second time.

The one verify run (pipeline, MLflow server, serving, drift) is also the offline proof:
every Python process it starts loads tests/security/netaudit/sitecustomize.py, which logs
each attempt to reach a non-loopback address or to look up a non-local name. CI markers
(CI, PYTEST_CURRENT_TEST, ...) are removed from that run's environment: MLflow turns its
telemetry off by itself when it sees them, and the run must behave as on a user's machine
(for the same reason the runner adds no ``CI``/``GITHUB_ACTIONS`` of GitHub's to any job;
the lint and test jobs run in this test's environment).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import generated_suite
from tests.ci_systems.github_actions import JobResult, Runner, Step, plan
from tests.envs import uv, uv_env

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
NETAUDIT = REPO_ROOT / "tests" / "security" / "netaudit"
# Variables by which tools detect CI or a test run (MLflow's list, mlflow/telemetry/utils.py).
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CI_MARKERS = ("CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI",
              "JENKINS_URL", "TRAVIS", "TF_BUILD", "BITBUCKET_BUILD_NUMBER",
              "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION")


def user_env() -> dict[str, str]:
    env = uv_env()
    env.pop("VIRTUAL_ENV", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run(command: list[str], cwd: Path, timeout: int,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(env or user_env())
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
    env = {key: value for key, value in user_env().items() if key not in CI_MARKERS}
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
    jobs: dict[str, JobResult]
    job_ids: list[str]


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> Verified:
    """Wheel install, new, then the workflow's jobs; the verify job's run is audited."""
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

    # A distinctive name: the suite's fingerprints normalise it (``demo`` is also a word).
    run([cli, "new", str(tmp_path / "gen_e2e"), "--profile", "startup", "--defaults"],
        tmp_path, 120)
    project = tmp_path / "gen_e2e"
    # the runner's workspace: the same path for every job, as on a GitHub runner
    workspace = tmp_path / "runner" / "work" / project.name
    log = tmp_path / "network.jsonl"
    verify_output: list[str] = []

    def cli_verify(step: Step, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """``make verify``, driven by ``mlops-scaffold verify`` (it runs that make target)."""
        done = subprocess.run([cli, "verify", "."], cwd=cwd, env=env, capture_output=True,
                              text=True, check=False, timeout=step.timeout)
        verify_output.append(ANSI.sub("", done.stdout))  # the workflow sets FORCE_COLOR=1
        return done

    suite: dict[str, str] = {}
    jobs: dict[str, JobResult] = {}
    for job in plan(project / ".github" / "workflows" / "ci.yml"):
        env = audited_env(log) if job.id == "verify" else user_env()
        # .venv carried from job to job: each `make setup` after the lint job's finds it
        runner = Runner(project, workspace, env, drivers={"make verify": cli_verify},
                        keep=(".venv",))
        started = time.monotonic()
        jobs[job.id] = result = runner.run_job(
            job, before=lambda work: suite.update(generated_suite.fingerprints(work))
        )
        print(f"\n{result.describe()}\njob {job.id}: {time.monotonic() - started:.0f} s")
        failed = [step for step in result.steps if not step.ok]
        assert not failed, f"job {job.id}:\n{result.describe()}\n{failed[0].detail[-6000:]}"
        if job.id == "test":  # the whole generated suite ran and passed: make test = pytest
            generated_suite.record_passed_suite(suite, f"{project.name} (workflow job test)")
    return Verified(workspace, "".join(verify_output), log, cli, jobs, list(jobs))


def test_the_workflow_jobs_ran_every_step_in_their_order(verified: Verified) -> None:
    assert verified.job_ids == ["lint", "test", "verify"]
    for result in verified.jobs.values():
        labels = [step.name for step in result.steps]
        assert labels[:4] == [labels[0], labels[1], ".env from .env.example", "make setup"], labels
        assert labels[0].startswith("actions/checkout@")
        assert labels[1].startswith("astral-sh/setup-uv@")
        assert all(step.ok for step in result.steps), result.describe()
    assert [s.name for s in verified.jobs["lint"].steps][4:] == ["make lint"]
    assert [s.name for s in verified.jobs["test"].steps][4:] == ["make test"]
    # the cache is saved and the report uploaded when the job ends: their paths exist
    assert [s.name for s in verified.jobs["verify"].steps][4:] == [
        "DVC cache", "make verify", "Upload verify report and logs",
        "post DVC cache", "post Upload verify report and logs",
    ]


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
