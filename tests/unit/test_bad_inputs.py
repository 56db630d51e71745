"""Every bad input a user can give the CLI: one `error:` line, its exit code, nothing written.

Each case runs `mlops_scaffold.cli.main` (the console script's entry point, so click's
usage errors go through the same printer) in-process with stdout and stderr captured
separately, from a scratch directory that holds every file the case needs. It asserts
the exit code, that stderr is exactly one line starting with `error: ` and containing
the expected text, that no traceback appears anywhere, and that the scratch directory
(names, sizes, mtimes; temp files of the run included) is unchanged. A few cases also
run as a real subprocess, which is where a traceback or a stray line would show first.
No case renders a project: every input is refused before rendering.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_scaffold.cli import main

Setup = Callable[[Path], None]

VALID_STACK = (
    "name: team\ndescription: ours\nextends: startup\nslots: {tuning: none}\n"
    "settings: {serving_port: 8081}\n"
)
VALID_ANSWERS = (
    "_commit: None\n_src_path: /nowhere\nprofile: startup\nproject_name: proj\n"
    "scaffold_version: 0.1.0\ntracking: mlflow\ndata_versioning: dvc\nfeature_store: feast\n"
    "monitoring: evidently\nserving: fastapi\nserving_platform: compose\norchestration: dvc\n"
    "tuning: optuna\n"
    "deploy: compose\nci: github-actions\npython_version: '3.11'\ntracking_backend: sqlite\n"
    "online_store: sqlite\nvalidation: none\nartifact_store: local\ndata_remote: local\n"
    "aws_region: us-east-1\nmlflow_port: 5000\nserving_port: 8000\nprometheus_port: 9090\n"
    "grafana_port: 3000\nairflow_port: 8080\n"
)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
}


# ---- builders of the files a case needs ------------------------------------------


def text_file(name: str, content: str) -> Setup:
    def build(root: Path) -> None:
        (root / name).write_text(content, encoding="utf-8")

    return build


def bytes_file(name: str, content: bytes) -> Setup:
    def build(root: Path) -> None:
        (root / name).write_bytes(content)

    return build


def directory(name: str, *files: str) -> Setup:
    def build(root: Path) -> None:
        (root / name).mkdir(parents=True)
        for file in files:
            (root / name / file).write_text("mine\n", encoding="utf-8")

    return build


def fifo(name: str) -> Setup:
    def build(root: Path) -> None:
        os.mkfifo(root / name)

    return build


def symlink_loop(name: str) -> Setup:
    def build(root: Path) -> None:
        (root / name).symlink_to(name)

    return build


def extends_chain(length: int) -> Setup:
    """s0.yaml extends s1.yaml ... extends startup: a chain of ``length`` files."""

    def build(root: Path) -> None:
        for index in range(length):
            parent = f"s{index + 1}.yaml" if index + 1 < length else "startup"
            (root / f"s{index}.yaml").write_text(
                f"name: s{index}\ndescription: link\nextends: {parent}\n", encoding="utf-8"
            )

    return build


def project(answers: str | bytes | None, *, git: bool = True, venv: bool = False) -> Setup:
    """A directory ``proj`` with an answers file, optionally a git repo with one commit."""

    def build(root: Path) -> None:
        proj = root / "proj"
        proj.mkdir()
        if answers is not None:
            path = proj / ".copier-answers.yml"
            if isinstance(answers, bytes):
                path.write_bytes(answers)
            else:
                path.write_text(answers, encoding="utf-8")
        (proj / "README.md").write_text("mine\n", encoding="utf-8")
        if venv:
            (proj / ".venv").mkdir()
        if git:
            past = os.stat(proj).st_mtime - 3600  # no racily-clean index entries to refresh
            for path in proj.iterdir():
                os.utime(path, (past, past))
            env = {**os.environ, **GIT_ENV}
            for command in (
                ["init", "-q", "--initial-branch=main"],
                ["add", "-A"],
                ["commit", "-qm", "init"],
                ["status", "--porcelain"],
            ):
                subprocess.run(["git", *command], cwd=proj, env=env, check=True)

    return build


def both(*builders: Setup) -> Setup:
    def build(root: Path) -> None:
        for builder in builders:
            builder(root)

    return build


# ---- the table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: argv ({tmp} is the scratch dir), exit code, text the line must hold."""

    id: str
    args: tuple[str, ...]
    code: int
    message: str
    setup: Setup | None = None
    xfail: str | None = None


def case(
    id: str,
    args: str | list[str],
    code: int,
    message: str,
    setup: Setup | None = None,
    xfail: str | None = None,
) -> Case:
    argv = tuple(args.split()) if isinstance(args, str) else tuple(args)
    return Case(id, argv, code, message, setup, xfail)


NEW = "new {tmp}/app"

CASES = [
    # -- new: profile and --stack choice
    case("new-neither-profile-nor-stack", NEW, 2, "exactly one of --profile NAME or --stack"),
    case("new-both-profile-and-stack", NEW + " -p startup -s x.yaml", 2, "exactly one of"),
    case("new-unknown-profile", NEW + " -p nope", 1, "unknown profile 'nope'"),
    case("new-profile-is-a-path", NEW + " -p ../stacks/startup", 1, "goes with --stack FILE"),
    case("new-profile-abs-path", NEW + " -p /etc/passwd", 1, "unknown profile '/etc/passwd'"),
    case("new-profile-newline", ["new", "{tmp}/app", "-p", "startup\n"], 1, "'startup\\n'"),
    case("new-profile-upper-case", NEW + " -p Startup", 1, "unknown profile 'Startup'"),
    case("new-profile-empty", ["new", "{tmp}/app", "-p", ""], 1, "unknown profile ''"),
    # -- new: --set
    case("set-unknown-component", NEW + " -p startup --set tuning=ray", 1,
         "slot 'tuning' allows optuna, ray-tune, none; got 'ray'"),
    case("set-unclosed-list", NEW + " -p startup --set serving_port=[", 1,
         "settings.serving_port: Input should be a valid integer; got '['"),
    case("set-template-expression",
         ["new", "{tmp}/app", "-p", "startup", "--set", "python_version={{ 7*7 }}"], 1,
         "allows 3.11; got '{{ 7*7 }}'"),
    case("set-yaml-mapping", ["new", "{tmp}/app", "-p", "startup", "--set",
                              "serving_port={a: 1}"], 1, "valid integer"),
    case("set-port-clash", NEW + " -p startup --set serving_port=5000", 1,
         "settings.mlflow_port and settings.serving_port are both 5000"),
    case("set-port-clash-prometheus", NEW + " -p startup --set prometheus_port=8000", 1,
         "settings.prometheus_port and settings.serving_port are both 8000"),
    case("set-port-privileged", NEW + " -p startup --set serving_port=80", 1,
         "greater than or equal to 1024; got 80"),
    case("set-port-too-high", NEW + " -p startup --set serving_port=70000", 1,
         "less than or equal to 65535"),
    case("set-port-float", NEW + " -p startup --set serving_port=8000.5", 1, "valid integer"),
    case("set-old-serving-spelling", NEW + " -p kubernetes --set serving=seldon", 1,
         "serving=seldon is now serving_platform=seldon (serving names the application: "
         "fastapi)"),
    case("set-port-negative", NEW + " -p startup --set serving_port=-1", 1, "valid integer"),
    case("set-port-empty", NEW + " -p startup --set serving_port=", 1, "valid integer"),
    case("set-port-huge", NEW + " -p startup --set serving_port=" + "9" * 5000, 1,
         "valid integer"),
    case("set-multi-line-value", ["new", "{tmp}/app", "-p", "startup", "--set",
                                  "aws_region=us-east-1\nrm -rf /"], 1, "us-east-1\\nrm -rf /"),
    case("set-multi-line-slot", ["new", "{tmp}/app", "-p", "startup", "--set",
                                 "tracking=mlflow\r\nx"], 1, "'mlflow\\r\\nx'"),
    case("set-unicode-line-separator", ["new", "{tmp}/app", "-p", "startup", "--set",
                                        "tuning=none\u2028x"], 1, "none\\u2028x"),
    case("set-unknown-key", NEW + " -p startup --set nokey=1", 1, "unknown key 'nokey'"),
    case("set-without-equals", NEW + " -p startup --set tuning", 1, "expected KEY=VALUE"),
    case("set-empty-key", NEW + " -p startup --set =none", 1, "expected KEY=VALUE"),
    case("set-unknown-backend", NEW + " -p startup --set online_store=mysql", 1,
         "allows sqlite, dynamodb, redis; got 'mysql'"),
    case("set-bad-region", NEW + " -p startup --set aws_region=mars", 1, "aws_region"),
    # -- new: destination
    case("dest-starts-with-digit", "new {tmp}/9app -p startup", 1, "must start with a letter"),
    case("dest-trailing-newline", ["new", "{tmp}/app\n", "-p", "startup"], 1, "'"),
    case("dest-space", ["new", "{tmp}/my app", "-p", "startup"], 1, "must start with a letter"),
    case("dest-name-too-long", "new {tmp}/" + "a" * 70 + " -p startup", 1,
         "at most 64 characters"),
    case("dest-name-over-filesystem-limit", "new {tmp}/" + "a" * 300 + " -p startup", 1,
         "at most 64 characters"),
    case("dest-python-keyword", "new {tmp}/class -p startup", 1,
         "the package name 'class' is a Python keyword"),
    case("dest-keyword-after-lowering", "new {tmp}/Import -p startup", 1,
         "the package name 'import' is a Python keyword"),
    case("dest-shadows-stdlib", "new {tmp}/json -p startup", 1,
         "would shadow the standard-library module"),
    case("dest-path-over-path-max", "new {tmp}/" + "d/" * 2100 + "app -p startup", 1,
         "File name too long"),
    case("dest-symlink-loop", "new {tmp}/app -p startup", 1, "DEST", symlink_loop("app")),
    case("dest-root", "new / -p startup", 1, "the directory name becomes the project name"),
    case("dest-is-a-file", NEW + " -p startup", 1, "exists and is not a directory",
         text_file("app", "mine\n")),
    case("dest-not-empty", NEW + " -p startup", 1, "exists and is not empty",
         directory("app", "keep.txt")),
    case("dest-not-empty-dry-run", NEW + " -p startup --dry-run", 1, "exists and is not empty",
         directory("app", "keep.txt")),
    case("dest-parent-is-a-file", "new {tmp}/file/app -p startup", 1, "is not a directory",
         text_file("file", "mine\n")),
    case("dest-grandparent-is-a-file", "new {tmp}/file/sub/app -p startup", 1,
         "is not a directory", text_file("file", "mine\n")),
    case("dest-unwritable-parent", "new /proc/app -p startup --no-git", 1,
         "cannot write the project to '/proc/app'"),
    # -- new: stack files
    case("stack-missing", NEW + " -s {tmp}/missing.yaml", 1, "stack file not found"),
    case("stack-path-over-path-max", NEW + " -s {tmp}/" + "d/" * 2100 + "s.yaml", 1,
         "File name too long"),
    case("stack-symlink-loop", NEW + " -s {tmp}/s.yaml", 1, "s.yaml: cannot read stack file",
         symlink_loop("s.yaml")),
    case("show-symlink-loop", "show {tmp}/s.yaml", 1, "s.yaml: cannot read stack file",
         symlink_loop("s.yaml")),
    case("stack-extends-symlink-loop", NEW + " -s {tmp}/s.yaml", 1, "extends: 'loop.yaml'",
         both(text_file("s.yaml", "name: a\ndescription: a\nextends: loop.yaml\n"),
              symlink_loop("loop.yaml"))),
    case("stack-is-a-directory", NEW + " -s {tmp}/dir.yaml", 1, "not a regular file",
         directory("dir.yaml")),
    case("stack-is-a-fifo", NEW + " -s {tmp}/pipe.yaml", 1, "not a regular file",
         fifo("pipe.yaml")),
    case("stack-not-utf8", NEW + " -s {tmp}/s.yaml", 1, "not UTF-8 text (byte 0xff at offset 6)",
         bytes_file("s.yaml", b"name: \xff\xfe\n")),
    case("stack-utf16", NEW + " -s {tmp}/s.yaml", 1, "not UTF-8",
         bytes_file("s.yaml", "name: x\n".encode("utf-16"))),
    case("stack-empty", NEW + " -s {tmp}/s.yaml", 1, "must be a mapping", text_file("s.yaml", "")),
    case("stack-list", NEW + " -s {tmp}/s.yaml", 1, "must be a mapping",
         text_file("s.yaml", "- a\n- b\n")),
    case("stack-scalar", NEW + " -s {tmp}/s.yaml", 1, "must be a mapping",
         text_file("s.yaml", "startup\n")),
    case("stack-invalid-yaml", NEW + " -s {tmp}/s.yaml", 1, "not valid YAML",
         text_file("s.yaml", "name: [unclosed\n")),
    case("stack-tab-indent", NEW + " -s {tmp}/s.yaml", 1, "not valid YAML",
         text_file("s.yaml", "slots:\n\ttracking: mlflow\n")),
    case("stack-nul-byte", NEW + " -s {tmp}/s.yaml", 1, "not valid YAML",
         bytes_file("s.yaml", b"name: a\x00b\n")),
    case("stack-duplicate-key", NEW + " -s {tmp}/s.yaml", 1, "duplicate key 'serving_port'",
         text_file("s.yaml", VALID_STACK.replace("{serving_port: 8081}",
                                                 "{serving_port: 8081, serving_port: 9000}"))),
    case("stack-duplicate-top-key", NEW + " -s {tmp}/s.yaml", 1, "duplicate key 'name'",
         text_file("s.yaml", VALID_STACK + "name: other\n")),
    case("stack-yaml-bomb", NEW + " -s {tmp}/s.yaml", 1, "aliases (*name)",
         text_file("s.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
             f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
             for i in range(8)))),
    case("stack-merge-key", NEW + " -s {tmp}/s.yaml", 1, "aliases",
         text_file("s.yaml", "base: &b {tuning: none}\nslots:\n  <<: *b\n")),
    case("stack-deep-nesting", NEW + " -s {tmp}/s.yaml", 1, "nested deeper than 16 levels",
         text_file("s.yaml", "name: " + "[" * 5000 + "]" * 5000 + "\n")),
    case("stack-deep-mapping", NEW + " -s {tmp}/s.yaml", 1, "nested deeper than 16 levels",
         text_file("s.yaml", "".join(f"{' ' * i}k{i}:\n" for i in range(40)))),
    case("stack-too-large", NEW + " -s {tmp}/s.yaml", 1, "too large for a stack file",
         text_file("s.yaml", VALID_STACK + "# padding\n" * 10_000)),
    case("stack-unhashable-key", NEW + " -s {tmp}/s.yaml", 1, "a key must be a plain value",
         text_file("s.yaml", "? [a, b]\n: c\n")),
    case("stack-extends-cycle", NEW + " -s {tmp}/a.yaml", 1, "extends forms a cycle",
         both(text_file("a.yaml", "name: a\ndescription: a\nextends: b.yaml\n"),
              text_file("b.yaml", "name: b\ndescription: b\nextends: a.yaml\n"))),
    case("stack-extends-itself", NEW + " -s {tmp}/a.yaml", 1, "extends forms a cycle",
         text_file("a.yaml", "name: a\ndescription: a\nextends: a.yaml\n")),
    case("stack-extends-chain-20", NEW + " -s {tmp}/s0.yaml", 1,
         "extends chain longer than 16 stack files", extends_chain(20)),
    case("stack-extends-chain-1200", NEW + " -s {tmp}/s0.yaml", 1,
         "extends chain longer than 16 stack files", extends_chain(1200)),
    case("stack-extends-unknown-profile", NEW + " -s {tmp}/s.yaml", 1,
         "extends: unknown profile 'nope'",
         text_file("s.yaml", "name: a\ndescription: a\nextends: nope\n")),
    case("stack-extends-missing-file", NEW + " -s {tmp}/s.yaml", 1, "is not a file",
         text_file("s.yaml", "name: a\ndescription: a\nextends: gone.yaml\n")),
    case("stack-extends-not-a-string", NEW + " -s {tmp}/s.yaml", 1,
         "extends must be a profile name or a file path",
         text_file("s.yaml", "name: a\ndescription: a\nextends: [startup]\n")),
    case("stack-extends-over-long-path", NEW + " -s {tmp}/s.yaml", 1, "extends: ",
         text_file("s.yaml", "name: a\ndescription: a\nextends: " + "x/" * 3000 + "a.yaml\n")),
    case("stack-extends-parent-not-utf8", NEW + " -s {tmp}/s.yaml", 1, "p.yaml: not UTF-8",
         both(text_file("s.yaml", "name: a\ndescription: a\nextends: p.yaml\n"),
              bytes_file("p.yaml", b"\x80"))),
    case("stack-slots-not-mapping", NEW + " -s {tmp}/s.yaml", 1, "slots must be a mapping",
         text_file("s.yaml", "name: a\ndescription: a\nslots: [mlflow]\n")),
    case("stack-unknown-top-key", NEW + " -s {tmp}/s.yaml", 1, "unknown key 'slot'",
         text_file("s.yaml", VALID_STACK + "slot: {}\n")),
    case("stack-unknown-slot", NEW + " -s {tmp}/s.yaml", 1, "unknown key 'slots.trackin'",
         text_file("s.yaml", VALID_STACK.replace("tuning: none", "trackin: mlflow"))),
    case("stack-missing-slots", NEW + " -s {tmp}/s.yaml", 1, "missing key 'slots'",
         text_file("s.yaml", "name: a\ndescription: a\n")),
    case("stack-name-newline", NEW + " -s {tmp}/s.yaml", 1, "name: String should match",
         text_file("s.yaml", VALID_STACK.replace("name: team", 'name: "team\\n"'))),
    case("stack-name-date", NEW + " -s {tmp}/s.yaml", 1, "name: Input should be a valid string",
         text_file("s.yaml", VALID_STACK.replace("name: team", "name: 2024-01-01"))),
    case("stack-port-string", NEW + " -s {tmp}/s.yaml", 1, "valid integer; got '8081'",
         text_file("s.yaml", VALID_STACK.replace("8081", "'8081'"))),
    case("stack-port-clash", NEW + " -s {tmp}/s.yaml", 1,
         "settings.mlflow_port and settings.serving_port are both 5000",
         text_file("s.yaml", VALID_STACK.replace("8081", "5000"))),
    case("stack-with-bad-set", NEW + " -s {tmp}/s.yaml --set ci=travis", 1,
         "slot 'ci' allows bitbucket, github-actions, gitlab, jenkins, none; got 'travis'",
         text_file("s.yaml", VALID_STACK)),
    # -- new: usage
    case("new-missing-dest", "new", 2, "Missing argument"),
    case("new-unknown-option", NEW + " -p startup --bogus", 2, "No such option: --bogus"),
    case("new-profile-without-value", NEW + " -p", 2, "requires an argument"),
    case("unknown-command", "frob", 2, "No such command 'frob'"),
    # -- show and profiles
    case("show-unknown-profile", "show nope", 1, "unknown profile 'nope'"),
    case("show-profile-path", "show ../stacks/startup", 1, "goes with --stack FILE"),
    case("show-missing-file", "show {tmp}/missing.yml", 1, "stack file not found"),
    case("show-invalid-yaml", "show {tmp}/s.yaml", 1, "not valid YAML",
         text_file("s.yaml", "a: b: c\n")),
    case("show-not-utf8", "show {tmp}/s.yaml", 1, "not UTF-8", bytes_file("s.yaml", b"\xc3\x28")),
    case("show-duplicate-key", "show {tmp}/s.yaml", 1, "duplicate key",
         text_file("s.yaml", "name: a\nname: b\n")),
    case("show-missing-argument", "show", 2, "Missing argument"),
    case("profiles-extra-argument", "profiles startup", 2, "unexpected extra argument"),
    case("profiles-unknown-option", "profiles --all", 2, "No such option: --all"),
    # -- verify and smoke
    case("verify-missing-dir", "verify {tmp}/gone", 1, "not a generated project"),
    case("verify-a-file", "verify {tmp}/f", 1, "not a generated project", text_file("f", "x")),
    case("verify-not-a-project", "verify {tmp}/proj", 1, "not a generated project",
         project(None, git=False)),
    case("verify-not-set-up", "verify {tmp}/proj", 1, "run `make setup` there first",
         project(VALID_ANSWERS, git=False)),
    case("verify-symlink-loop", "verify {tmp}/proj", 1, "proj", symlink_loop("proj")),
    case("update-symlink-loop", "update {tmp}/proj", 1, "cannot resolve the path",
         symlink_loop("proj")),
    case("diff-symlink-loop", "diff {tmp}/proj", 1, "cannot resolve the path",
         symlink_loop("proj")),
    case("verify-bad-runtime", "verify {tmp}/proj --runtime k8s", 2,
         "--runtime 'k8s': allowed runtimes are native, docker"),
    case("verify-missing-argument", "verify", 2, "Missing argument"),
    case("smoke-unknown-profile", "smoke -p nope", 1, "unknown profile 'nope'"),
    case("smoke-profile-path", "smoke -p ../stacks/startup", 1, "goes with --stack FILE"),
    case("smoke-bad-runtime", "smoke -p startup --runtime podman", 2, "allowed runtimes"),
    case("smoke-missing-profile", "smoke", 2, "Missing option"),
    # -- update and diff: projects that are not there or not projects
    case("update-missing-dir", "update {tmp}/gone", 1, "not a directory"),
    case("update-a-file", "update {tmp}/f", 1, "not a directory", text_file("f", "x")),
    case("update-not-a-project", "update {tmp}/proj", 1, "not a generated project",
         project(None, git=False)),
    case("update-not-git", "update {tmp}/proj", 1, "not a git repository",
         project(VALID_ANSWERS, git=False)),
    case("update-cwd-not-a-project", "update", 1, "not a generated project"),
    case("diff-missing-dir", "diff {tmp}/gone", 1, "not a directory"),
    case("diff-not-git", "diff {tmp}/proj", 1, "not a git repository",
         project(VALID_ANSWERS, git=False)),
    case("update-bad-set", "update {tmp}/proj --set serving_port=[", 1,
         "valid integer; got '['", project(VALID_ANSWERS)),
    case("update-set-port-clash", "update {tmp}/proj --set mlflow_port=8000", 1,
         "settings.mlflow_port and settings.serving_port are both 8000", project(VALID_ANSWERS)),
    case("update-profile-path", "update {tmp}/proj -p ../stacks/startup", 1,
         "goes with --stack FILE", project(VALID_ANSWERS)),
    case("diff-unknown-profile", "diff {tmp}/proj -p nope", 1, "unknown profile 'nope'",
         project(VALID_ANSWERS)),
    case("diff-unknown-option", "diff {tmp}/proj --bogus", 2, "No such option"),
    # -- answers files, hand-edited
    case("answers-port-string", "update {tmp}/proj", 1,
         ".copier-answers.yml: serving_port: Input should be a valid integer; got '8000'",
         project(VALID_ANSWERS.replace("serving_port: 8000", "serving_port: '8000'"))),
    case("answers-unknown-component", "diff {tmp}/proj", 1,
         ".copier-answers.yml: tracking: slot 'tracking' allows mlflow; got 'wandb'",
         project(VALID_ANSWERS.replace("tracking: mlflow", "tracking: wandb"))),
    case("answers-port-clash", "update {tmp}/proj", 1,
         "settings.mlflow_port and settings.serving_port are both 5000",
         project(VALID_ANSWERS.replace("serving_port: 8000", "serving_port: 5000"))),
    case("answers-bad-profile-name", "diff {tmp}/proj", 1, "profile: String should match",
         project(VALID_ANSWERS.replace("profile: startup", "profile: 'My Profile'"))),
    case("answers-missing-slot", "update {tmp}/proj", 1, "missing key 'serving'",
         project(VALID_ANSWERS.replace("serving: fastapi\n", ""))),
    case("answers-multi-line-value", "update {tmp}/proj", 1, "'us-east-1\\nx'",
         project(VALID_ANSWERS.replace("aws_region: us-east-1", 'aws_region: "us-east-1\\nx"'))),
    case("answers-not-a-mapping", "update {tmp}/proj", 1, "must be a YAML mapping",
         project("- a\n- b\n")),
    case("answers-invalid-yaml", "update {tmp}/proj", 1, ".copier-answers.yml",
         project(VALID_ANSWERS + "broken: [\n")),
    case("answers-not-utf8", "diff {tmp}/proj", 1, ".copier-answers.yml",
         project(VALID_ANSWERS.encode() + b"x: \xff\n")),
]


# ---- running and checking ----------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` with (is_dir, size, mtime_ns): what "nothing written" means."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            is_dir = path.is_dir() and not path.is_symlink()
            # git status takes and drops .git/index.lock to refresh the index: the .git
            # directory's own mtime moves, no file of the user (or of git) changes.
            mtime = 0 if name == ".git" else info.st_mtime_ns
            state[str(path.relative_to(root))] = (is_dir, 0 if is_dir else info.st_size, mtime)
    return state


def run_main(args: list[str]) -> tuple[int, str, str]:
    """Run the console script's ``main`` in-process; return (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = -1
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


def assert_one_error_line(
    code: int, stdout: str, stderr: str, expected: Case, longest_input: int = 0
) -> None:
    assert "Traceback" not in stdout + stderr, stderr
    assert code == expected.code, (code, stderr)
    assert stderr.endswith("\n") and stderr.count("\n") == 1, repr(stderr)
    assert len(stderr.splitlines()) == 1, repr(stderr)  # no \r, \u2028... either
    assert stderr.startswith("error: "), repr(stderr)
    assert expected.message in stderr, stderr
    assert len(stderr) < 1200 + longest_input, f"{len(stderr)} characters"


def prepare(tmp_path: Path, item: Case) -> tuple[Path, list[str]]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "tmp").mkdir()
    if item.setup is not None:
        item.setup(scratch)
    return scratch, [arg.replace("{tmp}", str(scratch)) for arg in item.args]


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(
            item,
            id=item.id,
            marks=[pytest.mark.xfail(reason=item.xfail, strict=True)] if item.xfail else [],
        )
        for item in CASES
    ],
)
def test_bad_input(item: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch, args = prepare(tmp_path, item)
    monkeypatch.chdir(scratch)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch / "tmp"))
    before = snapshot(scratch)
    code, stdout, stderr = run_main(args)
    assert_one_error_line(code, stdout, stderr, item, max(map(len, args)))
    assert snapshot(scratch) == before


def test_the_table_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 60
    commands = {item.args[0] for item in CASES}
    assert {"new", "show", "profiles", "verify", "smoke", "update", "diff"} <= commands
    assert len({item.id for item in CASES}) == len(CASES)


# ---- the same through a real process -------------------------------------------------

SUBPROCESS_CASES = [
    "stack-not-utf8",
    "stack-deep-nesting",
    "stack-extends-chain-1200",
    "set-unclosed-list",
    "set-multi-line-value",
    "dest-unwritable-parent",
    "new-unknown-option",
    "answers-port-string",
]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case_id: str, tmp_path: Path) -> None:
    item = next(item for item in CASES if item.id == case_id)
    scratch, args = prepare(tmp_path, item)
    before = snapshot(scratch)
    result = subprocess.run(
        [sys.executable, "-c", "from mlops_scaffold.cli import main; main()", *args],
        cwd=scratch, env={**os.environ, "TMPDIR": str(scratch / "tmp")},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert_one_error_line(
        result.returncode, result.stdout, result.stderr, item, max(map(len, args))
    )
    assert snapshot(scratch) == before


def test_undecodable_argument_bytes_are_escaped(tmp_path: Path) -> None:
    """A path with bytes that are not UTF-8 reaches the message escaped, on one line."""
    result = subprocess.run(
        [sys.executable, "-c", "from mlops_scaffold.cli import main; main()", "show",
         os.fsencode(str(tmp_path)) + b"/\xff\n.yaml"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    item = Case("undecodable", (), 1, "\\udcff\\n.yaml: stack file not found")
    assert_one_error_line(result.returncode, result.stdout, result.stderr, item)


# ---- failures of the machine while `new` writes ---------------------------------------


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EACCES, "Permission denied"),
        (errno.EROFS, "Read-only file system"),
    ],
)
def test_os_error_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, text: str
) -> None:
    """A full disk (or a permission lost mid-way) during the render: one line, no leftovers,
    not even the missing parents `new` created for DEST."""
    from mlops_scaffold import project as project_module

    def failing_render(answers: dict[str, object], destination: Path, **_: object) -> None:
        (destination / "src").mkdir(parents=True)
        (destination / "src" / "half.py").write_text("partial")
        raise OSError(error, os.strerror(error), str(destination / "src" / "half.py"))

    monkeypatch.setattr(project_module, "render", failing_render)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = snapshot(scratch)
    code, stdout, stderr = run_main(["new", f"{scratch}/deep/er/app", "-p", "startup", "--no-git"])
    expected = Case("os-error", (), 1, f"(writing src/half.py): {text}; nothing was written")
    assert_one_error_line(code, stdout, stderr, expected)
    assert snapshot(scratch) == before


def test_os_error_keeps_an_existing_empty_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_scaffold import project as project_module

    def failing_render(answers: dict[str, object], destination: Path, **_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(project_module, "render", failing_render)
    (tmp_path / "app").mkdir()
    code, _, stderr = run_main(["new", str(tmp_path / "app"), "-p", "startup", "--no-git"])
    assert code == 1 and "No space left on device" in stderr
    assert [path.name for path in tmp_path.iterdir()] == ["app"]
    assert list((tmp_path / "app").iterdir()) == []


def test_interrupt_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_scaffold import stacks

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stacks, "load_reference", interrupted)
    code, stdout, stderr = run_main(["show", "startup"])
    assert_one_error_line(code, stdout, stderr, Case("interrupt", (), 130, "error: interrupted"))
