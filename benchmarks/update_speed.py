"""Time of ``mlops-scaffold update`` on a fresh startup project, next to ``copier update``.

Target (issue: update): ``mlops-scaffold update`` at most 2 s when nothing conflicts.
Scenario, the same for both tools: a startup project generated from an "older" template
(the installed template minus the last line of its ``.gitignore``), a user commit that
edits the first line of ``.gitignore`` and adds a file, then an update to the installed
template. The baseline is plain Copier on the same template through the repository's root
``copier.yml`` (tags v1 = older, v2 = installed), in the same run. No assertions.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_scaffold.gitutil import git_env
from mlops_scaffold.project import create_project
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import load_stack

BIN = Path(sys.executable).parent
CLI = str(BIN / "mlops-scaffold")
COPIER = str(BIN / "copier")
ROOT_COPIER_YML = Path(__file__).resolve().parents[1] / "copier.yml"
RUNS = 5
COPIER_UPDATE = [COPIER, "update", "--defaults", "--trust", "--vcs-ref", "v2", "--quiet"]


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(
        command,
        cwd=cwd,
        check=True,
        env=git_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``command`` (CPU time is steadier on a busy machine)."""
    cpu = children_cpu()
    started = time.perf_counter()
    run(command, cwd)
    return time.perf_counter() - started, children_cpu() - cpu


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (
        statistics.median(wall for wall, _ in samples),
        statistics.median(cpu for _, cpu in samples),
    )


def older_template(dest: Path) -> Path:
    """A copy of the installed template whose project ``.gitignore`` lacks its last line."""
    shutil.copytree(template_dir(), dest, ignore=shutil.ignore_patterns("__pycache__"))
    ignore = dest / "project" / ".gitignore"
    lines = ignore.read_text().splitlines(keepends=True)
    ignore.write_text("".join(lines[:-1]))
    return dest


def user_edit(project: Path) -> None:
    ignore = project / ".gitignore"
    ignore.write_text("# team: keep local notes out\n" + ignore.read_text())
    (project / "TEAM.md").write_text("Our conventions.\n")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "Team edits"], project)


def scaffold_project(scratch: Path, old: Path, index: int) -> Path:
    project = create_project(load_stack(profile="startup"), scratch / f"s{index}", template=old)
    user_edit(project)
    return project


def copier_template_repo(scratch: Path, old: Path) -> Path:
    """A git repository laid out like this one: root copier.yml + templates/ (v1, v2)."""
    repo = scratch / "template-repo"
    repo.mkdir()
    shutil.copy2(ROOT_COPIER_YML, repo / "copier.yml")
    for tag, source in (("v1", old), ("v2", template_dir())):
        shutil.rmtree(repo / "templates", ignore_errors=True)
        shutil.copytree(source, repo / "templates", ignore=shutil.ignore_patterns("__pycache__"))
        if tag == "v1":
            run(["git", "init", "-q", "-b", "main"], repo)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-q", "-m", tag], repo)
        run(["git", "tag", tag], repo)
    return repo


def copier_project(scratch: Path, repo: Path, index: int) -> Path:
    project = scratch / f"c{index}"
    run(
        [
            COPIER,
            "copy",
            "--vcs-ref",
            "v1",
            "--defaults",
            "--trust",
            "--quiet",
            str(repo),
            str(project),
        ],
        scratch,
    )
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "Generate"], project)
    user_edit(project)
    return project


def show(label: str, figures: tuple[float, float], note: str = "") -> None:
    wall, cpu = figures
    print(f"{label:<52} {wall * 1000:6.0f} ms wall {cpu * 1000:6.0f} ms cpu  {note}".rstrip())


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-update-"))
    try:
        old = older_template(scratch / "old-template")
        repo = copier_template_repo(scratch, old)
        pairs = [
            (scaffold_project(scratch, old, index), copier_project(scratch, repo, index))
            for index in range(RUNS)
        ]
        # Alternate the two tools so a busy machine slows both alike.
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for scaffolded, copied in pairs:
            ours.append(timed([CLI, "update"], scaffolded))
            theirs.append(timed(COPIER_UPDATE, copied))
        current = pairs[0][0]
        noop = medians([timed([CLI, "update"], current) for _ in range(RUNS)])
        diff = medians([timed([CLI, "diff"], current) for _ in range(RUNS)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    update, plain = medians(ours), medians(theirs)
    show("mlops-scaffold update (template change, user edits)", update, "(target <= 2000 ms)")
    show(
        "copier update --vcs-ref v2 (same change and edits)",
        plain,
        f"(mlops-scaffold update: {update[0] / plain[0]:.2f}x of this wall time)",
    )
    show("mlops-scaffold update, already up to date", noop)
    show("mlops-scaffold diff, already up to date", diff)


if __name__ == "__main__":
    main()
