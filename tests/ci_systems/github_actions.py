"""Run a GitHub Actions workflow's jobs on this machine, as a runner would run them.

No hosted runner is reachable here, so the jobs run on this machine, one after another in
the order their ``needs:`` give (file order among jobs that do not depend on each other):

- each job starts from a fresh checkout: ``workspace`` is deleted and the rendered project
  (a git repository) is cloned into it, as ``actions/checkout`` fetches the commit (but
  for the paths the caller asks to ``keep``, e.g. the ``.venv`` an earlier job built);
- ``run:`` steps are written to a script and run by the shell GitHub uses: no ``shell:``
  means ``bash -e {0}``, ``shell: bash`` means ``bash --noprofile --norc -eo pipefail {0}``,
  in the step's ``working-directory`` (else the ``defaults.run`` of the job or workflow);
- each step's environment is the runner's (``base_env``) + the workflow's ``env:`` + the
  job's + the step's (the later wins), plus what earlier steps appended to ``$GITHUB_ENV``
  and ``$GITHUB_PATH``;
- ``uses:`` steps map to this machine: ``actions/checkout`` as above,
  ``astral-sh/setup-uv`` and ``actions/setup-python`` = the uv and Python installed here
  (the uv version and the Python version they name must be the ones found here),
  ``actions/cache`` and ``actions/upload-artifact`` = the paths they name must exist when
  the job ends (the cache is saved, the artifact uploaded, at that point). Any other
  action, an input of these actions that is not mapped, a step ``if:`` other than
  ``success()``/``always()``/``failure()`` or a job key such as ``strategy`` raises
  :class:`Unsupported` when the workflow is planned: a new action is never skipped silently;
- ``${{ secrets.NAME }}`` is the empty string (a repository that defines no secrets, as
  GitHub evaluates an unset one); any other ``${{ }}`` expression where it changes what
  runs (``run``, ``env``, ``working-directory``, a path) and a service container are
  *needs* of the step or job: :func:`plan` lists them, and :meth:`Runner.run_job` refuses a
  job that has any, so a job runs completely or not at all.

:func:`plan` describes all of this without running anything: the profiles whose jobs need
what this machine lacks (service containers) are checked with it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_scaffold.verify.report import Step as StepResult  # name, ok, seconds, detail

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
SECRET = re.compile(r"\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*")
#: action (without @ref) -> the inputs this module maps (others raise Unsupported)
ACTIONS: dict[str, frozenset[str]] = {
    "actions/checkout": frozenset({"persist-credentials"}),
    "astral-sh/setup-uv": frozenset(
        {"version", "python-version", "enable-cache", "cache-dependency-glob"}
    ),
    "actions/setup-python": frozenset({"python-version"}),
    "actions/cache": frozenset({"path", "key", "restore-keys"}),
    "actions/upload-artifact": frozenset(
        {"name", "path", "if-no-files-found", "retention-days"}
    ),
}
#: inputs whose value may hold an expression: they name, they do not change what runs
NAMING_INPUTS = frozenset({"key", "restore-keys", "name"})
CONDITIONS = {None: "success", "success()": "success", "always()": "always",
              "failure()": "failure"}
JOB_KEYS = frozenset({"name", "runs-on", "timeout-minutes", "needs", "steps", "env",
                      "defaults", "permissions", "services"})
STEP_KEYS = frozenset({"name", "id", "uses", "with", "run", "env", "if", "shell",
                       "working-directory", "timeout-minutes"})


class Unsupported(Exception):
    """A part of the workflow this machine cannot run as GitHub would."""


@dataclass(frozen=True)
class Step:
    """One step as it would run: a shell script or a mapped action."""

    label: str
    run: str | None
    action: str | None
    inputs: dict[str, str]
    env: dict[str, str]
    shell: list[str]
    working_directory: str
    condition: str
    timeout: float
    needs: tuple[str, ...] = ()  # what this machine lacks to run it as GitHub would


@dataclass(frozen=True)
class Job:
    id: str
    needs: tuple[str, ...]
    steps: tuple[Step, ...]
    services: dict[str, dict[str, Any]]

    def lacks(self) -> list[str]:
        """What this machine lacks to run the job (empty: it runs here)."""
        found = [f"service {name}: {spec.get('image')} on {', '.join(spec.get('ports') or [])}"
                 for name, spec in self.services.items()]
        return found + [f"{step.label}: {need}" for step in self.steps for need in step.needs]


@dataclass
class JobResult:
    id: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def describe(self) -> str:
        return "\n".join(
            f"{self.id}: {'ok ' if s.ok else 'FAILED'} {s.seconds:6.1f} s  {s.name}"
            for s in self.steps
        )


def _evaluated(value: str, where: str, needs: list[str]) -> str:
    """``value`` with ``${{ secrets.X }}`` as ''; another expression is noted in ``needs``."""
    def replace(match: re.Match[str]) -> str:
        if SECRET.fullmatch(match.group(1)):
            return ""
        needs.append(f"{where}: the expression {match.group(0)!r}")
        return match.group(0)

    return EXPRESSION.sub(replace, value)


def _env(mapping: Any, where: str, needs: list[str]) -> dict[str, str]:
    return {str(key): _evaluated(str(value), f"{where} env {key}", needs)
            for key, value in (mapping or {}).items()}


def _shell(name: str | None, where: str) -> list[str]:
    shells = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
              "sh": ["sh", "-e"]}
    if name not in shells:
        raise Unsupported(f"{where}: shell {name!r}")
    return shells[name]


def _action(uses: str, where: str) -> str:
    name = uses.split("@", 1)[0]
    if name not in ACTIONS:
        raise Unsupported(f"{where}: action {uses!r} has no mapping on this machine")
    return name


def _step(raw: dict[str, Any], index: int, job: dict[str, Any], workflow: dict[str, Any],
          job_id: str) -> Step:
    where = f"job {job_id} step {index + 1}"
    unknown = set(raw) - STEP_KEYS
    if unknown:
        raise Unsupported(f"{where}: keys {sorted(unknown)}")
    condition = raw.get("if")
    if condition not in CONDITIONS:
        raise Unsupported(f"{where}: if {condition!r}")
    defaults = {**((workflow.get("defaults") or {}).get("run") or {}),
                **((job.get("defaults") or {}).get("run") or {})}
    needs: list[str] = []
    env = _env(raw.get("env"), where, needs)
    timeout = 60.0 * float(raw.get("timeout-minutes") or job.get("timeout-minutes") or 360)
    if "uses" in raw:
        action = _action(str(raw["uses"]), where)
        inputs = {str(key): str(value) for key, value in (raw.get("with") or {}).items()}
        unmapped = set(inputs) - ACTIONS[action]
        if unmapped:
            raise Unsupported(f"{where}: {action} inputs {sorted(unmapped)} have no mapping")
        inputs = {key: value if key in NAMING_INPUTS else
                  _evaluated(value, f"{where} with.{key}", needs)
                  for key, value in inputs.items()}
        return Step(str(raw.get("name") or raw["uses"]), None, action, inputs, env, [],
                    ".", CONDITIONS[condition], timeout, tuple(needs))
    run = _evaluated(str(raw["run"]), where, needs)
    directory = _evaluated(
        str(raw.get("working-directory") or defaults.get("working-directory") or "."), where,
        needs,
    )
    shell = _shell(raw.get("shell") or defaults.get("shell"), where)
    return Step(str(raw.get("name") or run.splitlines()[0]), run, None, {}, env, shell,
                directory, CONDITIONS[condition], timeout, tuple(needs))


def plan(workflow_file: Path) -> list[Job]:
    """The workflow's jobs in run order, each step mapped (raises :class:`Unsupported`)."""
    workflow = yaml.safe_load(workflow_file.read_text(encoding="utf-8"))
    workflow_env = {str(key): str(value) for key, value in (workflow.get("env") or {}).items()}
    jobs: dict[str, Job] = {}
    for job_id, raw in (workflow.get("jobs") or {}).items():
        unknown = set(raw) - JOB_KEYS
        if unknown:
            raise Unsupported(f"job {job_id}: keys {sorted(unknown)} (matrix, if, container...)")
        needs = raw.get("needs") or []
        needs = (needs,) if isinstance(needs, str) else tuple(needs)
        job_env = {**workflow_env, **{str(k): str(v) for k, v in (raw.get("env") or {}).items()}}
        steps = tuple(
            _step({**step, "env": {**job_env, **(step.get("env") or {})}}, index, raw, workflow,
                  job_id)
            for index, step in enumerate(raw.get("steps") or [])
        )
        jobs[job_id] = Job(job_id, needs, steps, dict(raw.get("services") or {}))
    ordered: list[Job] = []
    done: set[str] = set()
    while len(ordered) < len(jobs):
        ready = [job for job in jobs.values()
                 if job.id not in done and set(job.needs) <= done]
        missing = {need for job in jobs.values() for need in job.needs} - set(jobs)
        if missing or not ready:
            raise Unsupported(f"needs: unknown jobs {sorted(missing)} or a cycle")
        ordered.append(ready[0])
        done.add(ready[0].id)
    return ordered


#: replaces the shell for a step whose ``run:`` is the key: (step, cwd, env) -> result
Driver = Callable[[Step, Path, dict[str, str]], subprocess.CompletedProcess[str]]


class Runner:
    """Runs planned jobs against a git repository on this machine."""

    def __init__(self, repository: Path, workspace: Path, base_env: Mapping[str, str],
                 drivers: Mapping[str, Driver] | None = None,
                 keep: tuple[str, ...] = ()) -> None:
        """``keep``: untracked paths a checkout carries over from the previous job.

        A stand-in for a cache, to spare CI time: with ``keep=(".venv",)`` only the first
        job's ``make setup`` builds the environment from nothing, a later job's ``make
        setup`` still runs and finds it (the workspace path is the same for every job, so
        the environment's absolute paths hold). Everything else is a fresh clone.
        """
        self.repository = repository
        self.workspace = workspace
        self.base_env = dict(base_env)
        self.drivers = dict(drivers or {})
        self.keep = keep

    def run_job(self, job: Job, before: Callable[[Path], None] | None = None) -> JobResult:
        """Run ``job``; ``before(workspace)`` is called after the checkout step."""
        if job.lacks():
            raise Unsupported(f"job {job.id} cannot run here: {job.lacks()}")
        result = JobResult(job.id)
        runner_temp = self.workspace.parent / f"{self.workspace.name}-runner-temp"
        shutil.rmtree(runner_temp, ignore_errors=True)
        runner_temp.mkdir(parents=True)
        github_env, github_path = runner_temp / "github_env", runner_temp / "github_path"
        added_env: dict[str, str] = {}
        added_path: list[str] = []
        checks: list[tuple[str, list[str]]] = []  # (step label, paths that must exist)
        failed = False
        for step in job.steps:
            if (step.condition == "success" and failed) or (
                step.condition == "failure" and not failed
            ):
                continue
            started = time.monotonic()
            env = {**self.base_env, **step.env, **added_env,
                   "GITHUB_WORKSPACE": str(self.workspace), "RUNNER_TEMP": str(runner_temp),
                   "GITHUB_ENV": str(github_env), "GITHUB_PATH": str(github_path)}
            if added_path:
                env["PATH"] = os.pathsep.join([*reversed(added_path), env["PATH"]])
            github_env.write_text("", encoding="utf-8")
            github_path.write_text("", encoding="utf-8")
            if step.action is None:
                ok, output = self._run(step, env)
            else:
                ok, output = self._action(step, env, checks, added_env)
                if ok and step.action == "actions/checkout" and before is not None:
                    before(self.workspace)
            added_env.update(_read_env_file(github_env))
            added_path += [line for line in github_path.read_text().splitlines() if line]
            result.steps.append(StepResult(step.label, ok, time.monotonic() - started, output))
            failed = failed or not ok
        for label, paths in checks:  # post steps: the cache is saved, the artifact uploaded
            missing = [path for path in paths if not _present(self.workspace / path)]
            result.steps.append(StepResult(f"post {label}", not missing, 0.0,
                                           f"missing: {missing}" if missing else ""))
        shutil.rmtree(runner_temp, ignore_errors=True)
        return result

    def _run(self, step: Step, env: dict[str, str]) -> tuple[bool, str]:
        assert step.run is not None
        cwd = self.workspace / step.working_directory
        driver = self.drivers.get(step.run.strip())
        if driver is not None:
            done = driver(step, cwd, env)
        else:
            script = self.workspace.parent / f"{self.workspace.name}-step.sh"
            script.write_text(step.run, encoding="utf-8")
            try:
                done = subprocess.run([*step.shell, str(script)], cwd=cwd, env=env,
                                      capture_output=True, text=True, check=False,
                                      timeout=step.timeout)
            finally:
                script.unlink(missing_ok=True)
        return done.returncode == 0, done.stdout + done.stderr

    def _action(self, step: Step, env: dict[str, str], checks: list[tuple[str, list[str]]],
                added_env: dict[str, str]) -> tuple[bool, str]:
        if step.action == "actions/checkout":
            aside = self.workspace.parent / f"{self.workspace.name}-kept"
            shutil.rmtree(aside, ignore_errors=True)
            kept = [name for name in self.keep if (self.workspace / name).exists()]
            for name in kept:
                (aside / name).parent.mkdir(parents=True, exist_ok=True)
                (self.workspace / name).rename(aside / name)
            shutil.rmtree(self.workspace, ignore_errors=True)
            self.workspace.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(["git", "clone", "--quiet", str(self.repository),
                                   str(self.workspace)], capture_output=True, text=True,
                                  check=False, timeout=300)
            for name in kept:
                (aside / name).rename(self.workspace / name)
            shutil.rmtree(aside, ignore_errors=True)
            return done.returncode == 0, done.stdout + done.stderr
        if step.action in ("astral-sh/setup-uv", "actions/setup-python"):
            return _setup_tools(step, env, added_env)
        paths = [line.strip() for line in step.inputs["path"].splitlines() if line.strip()]
        checks.append((step.label, paths))
        return True, ""


def _setup_tools(step: Step, env: dict[str, str], added_env: dict[str, str]) -> tuple[bool, str]:
    """The uv and Python here must be the versions the step asks for."""
    problems = []
    wanted_uv = step.inputs.get("version")
    if step.action == "astral-sh/setup-uv":
        found = subprocess.run([env.get("UV") or "uv", "--version"], capture_output=True,
                               text=True, env=env, check=False).stdout.split()
        if wanted_uv and (len(found) < 2 or found[1] != wanted_uv):
            problems.append(f"uv {wanted_uv} wanted, found {' '.join(found) or 'none'}")
    python = step.inputs.get("python-version")
    if python:
        found_python = shutil.which(f"python{python}", path=env.get("PATH"))
        if found_python is None:
            problems.append(f"python{python} is not on PATH")
        elif step.action == "astral-sh/setup-uv":
            added_env["UV_PYTHON"] = python  # what setup-uv's python-version input sets
    return not problems, "; ".join(problems)


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "<<" in line.split("=", 1)[0]:
            raise Unsupported(f"$GITHUB_ENV multi-line value {line!r}")
        if "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _present(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))
