"""The workflow runner of github_actions.py on small workflows (seconds, no project setup)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ci_systems.github_actions import JobResult, Runner, Unsupported, plan

CHECKOUT = {"uses": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
            "with": {"persist-credentials": False}}


def workflow(tmp_path: Path, jobs: dict[str, object], **top: object) -> Path:
    path = tmp_path / "ci.yml"
    path.write_text(yaml.safe_dump({"name": "ci", "on": "push", **top, "jobs": jobs}),
                    encoding="utf-8")
    return path


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "tracked.txt").write_text("tracked\n", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "init"], check=True)
    return repo


def run(repository: Path, tmp_path: Path, path: Path) -> dict[str, JobResult]:
    runner = Runner(repository, tmp_path / "work" / "repo", os.environ)
    return {job.id: runner.run_job(job) for job in plan(path)}


def test_jobs_run_in_the_order_their_needs_give(tmp_path: Path) -> None:
    step = {"run": "true"}
    # (the file lists them a, b, c, d: safe_dump sorts the keys)
    path = workflow(tmp_path, {"a": {"needs": ["c", "d"], "steps": [step]},
                               "b": {"steps": [step]}, "c": {"needs": "d", "steps": [step]},
                               "d": {"steps": [step]}})
    assert [job.id for job in plan(path)] == ["b", "d", "c", "a"]
    with pytest.raises(Unsupported, match="cycle"):
        plan(workflow(tmp_path, {"a": {"needs": "b", "steps": [step]},
                                 "b": {"needs": "a", "steps": [step]}}))
    with pytest.raises(Unsupported, match="unknown jobs"):
        plan(workflow(tmp_path, {"a": {"needs": "nope", "steps": [step]}}))


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"steps": [{"uses": "actions/setup-node@v4"}]}, "actions/setup-node@v4"),
        ({"steps": [{**CHECKOUT, "with": {"fetch-depth": 0}}]}, "fetch-depth"),
        ({"strategy": {"matrix": {"x": [1]}}, "steps": [{"run": "true"}]}, "strategy"),
        ({"steps": [{"run": "true", "if": "github.event_name == 'push'"}]}, "if"),
        ({"steps": [{"run": "true", "continue-on-error": True}]}, "continue-on-error"),
        ({"steps": [{"run": "true", "shell": "pwsh"}]}, "pwsh"),
    ],
)
def test_what_has_no_mapping_is_refused_when_planned(
    tmp_path: Path, job: dict[str, object], message: str
) -> None:
    with pytest.raises(Unsupported, match=message):
        plan(workflow(tmp_path, {"a": job}))


def test_env_precedence_shell_semantics_and_working_directory(
    repository: Path, tmp_path: Path
) -> None:
    steps = [
        CHECKOUT,
        {"env": {"LEVEL": "step"}, "run": 'echo "$LEVEL $JOB_ONLY $TOP_ONLY $(pwd)" > ../out.txt',
         "working-directory": "sub"},
        {"run": 'echo "$LEVEL" > level.txt; echo "FROM_STEP=1" >> "$GITHUB_ENV"'},
        {"run": 'echo "$FROM_STEP" > carried.txt'},
        {"run": "false | true; echo piped > default-shell.txt"},
        {"shell": "bash", "run": "false | true; echo piped > pipefail.txt"},
        {"run": "echo never > skipped.txt"},
        {"if": "failure()", "run": "echo yes > on-failure.txt"},
        {"if": "always()", "run": "echo yes > always.txt"},
    ]
    path = workflow(tmp_path, {"a": {"env": {"LEVEL": "job", "JOB_ONLY": "j"}, "steps": steps}},
                    env={"LEVEL": "top", "TOP_ONLY": "t"})
    result = run(repository, tmp_path, path)["a"]
    work = tmp_path / "work" / "repo"
    assert (work / "out.txt").read_text().split() == ["step", "j", "t", str(work / "sub")]
    assert (work / "level.txt").read_text().strip() == "job"
    assert (work / "carried.txt").read_text().strip() == "1"
    assert (work / "default-shell.txt").is_file()  # bash -e: a pipeline's status is its last
    assert not (work / "pipefail.txt").exists()  # shell: bash adds -o pipefail
    assert not (work / "skipped.txt").exists()
    assert (work / "on-failure.txt").is_file() and (work / "always.txt").is_file()
    assert not result.ok
    assert [step.ok for step in result.steps] == [True] * 5 + [False, True, True]


def test_each_job_starts_from_a_fresh_checkout_and_post_steps_check_paths(
    repository: Path, tmp_path: Path
) -> None:
    upload = {"uses": "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
              "if": "always()", "with": {"name": "r-${{ github.run_id }}",
                                         "path": "reports/\nlogs/"}}
    cache = {"uses": "actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830",
             "with": {"path": ".dvc/cache", "key": "k-${{ hashFiles('x') }}"}}
    path = workflow(tmp_path, {
        "first": {"steps": [CHECKOUT, {"run": "mkdir reports logs && touch reports/r logs/l"},
                            upload]},
        "second": {"needs": "first",
                   "steps": [CHECKOUT, {"run": "test ! -e reports && test -f sub/tracked.txt"},
                             cache, upload]},
    })
    results = run(repository, tmp_path, path)
    assert results["first"].ok, results["first"].describe()
    second = results["second"]
    assert [step.ok for step in second.steps] == [True, True, True, True, False, False]
    assert "'.dvc/cache'" in second.steps[-2].detail
    assert "'reports/', 'logs/'" in second.steps[-1].detail


def test_expressions_and_services_make_a_job_unrunnable(
    repository: Path, tmp_path: Path
) -> None:
    path = workflow(tmp_path, {
        "secret": {"steps": [{"env": {"TOKEN": "${{ secrets.TOKEN }}"},
                              "run": 'test -z "$TOKEN" && touch ../secret-empty'}]},
        "sha": {"steps": [{"run": "echo ${{ github.sha }}"}]},
        "db": {"services": {"pg": {"image": "postgres:16", "ports": ["127.0.0.1:5432:5432"]}},
               "steps": [{"run": "true"}]},
    })
    jobs = {job.id: job for job in plan(path)}
    assert jobs["secret"].lacks() == []
    assert jobs["sha"].lacks() == ["echo ${{ github.sha }}: job sha step 1: the expression "
                                   "'${{ github.sha }}'"]
    assert jobs["db"].lacks() == ["service pg: postgres:16 on 127.0.0.1:5432:5432"]
    runner = Runner(repository, tmp_path / "work" / "repo", os.environ)
    (tmp_path / "work" / "repo").mkdir(parents=True)
    assert runner.run_job(jobs["secret"]).ok
    assert (tmp_path / "work" / "secret-empty").is_file()
    for name in ("sha", "db"):
        with pytest.raises(Unsupported, match=f"job {name} cannot run here"):
            runner.run_job(jobs[name])


def test_setup_actions_must_match_this_machine(repository: Path, tmp_path: Path) -> None:
    setup = {"uses": "astral-sh/setup-uv@20cfd1bf945f4377ade1205e4dbc17946fc9a30d",
             "with": {"version": "0.0.1", "python-version": "2.9"}}
    result = run(repository, tmp_path, workflow(tmp_path, {"a": {"steps": [setup]}}))["a"]
    assert not result.ok
    assert "uv 0.0.1 wanted" in result.steps[0].detail
    assert "python2.9 is not on PATH" in result.steps[0].detail


def test_a_checkout_carries_over_only_the_kept_paths(repository: Path, tmp_path: Path) -> None:
    make = {"run": "mkdir -p .venv/bin other && echo $RANDOM > .venv/bin/python && touch other/x"}
    path = workflow(tmp_path, {
        "a": {"steps": [CHECKOUT, make]},
        "b": {"needs": "a", "steps": [CHECKOUT, {"run": "test -f .venv/bin/python"},
                                      {"run": "test ! -e other && test -f sub/tracked.txt"}]},
    })
    work = tmp_path / "work" / "repo"
    runner = Runner(repository, work, os.environ, keep=(".venv",))
    first, second = plan(path)
    assert runner.run_job(first).ok
    built = (work / ".venv" / "bin" / "python").read_text()
    result = runner.run_job(second)
    assert result.ok, result.describe()
    assert (work / ".venv" / "bin" / "python").read_text() == built
    assert sorted(p.name for p in work.parent.iterdir()) == ["repo"]
