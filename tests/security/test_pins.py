"""Pinned supply chain of every rendered profile: actions by commit SHA with their release
tag, base images by exact patch tag of the project's Python, one image per project, and
the Renovate rules that add and refresh digests matching those tags."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.security.conftest import CANARY

pytestmark = pytest.mark.render

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
RELEASE_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")
FROM = re.compile(r"^FROM\s+(?P<image>\S+)(?:\s+AS\s+\S+)?\s*$", re.IGNORECASE)


def projects(targets: dict[str, Path]) -> dict[str, Path]:
    return {name: root for name, root in targets.items() if name not in {"scaffolder", CANARY}}


def test_every_action_is_pinned_to_a_commit_with_its_release(targets: dict[str, Path]) -> None:
    seen: dict[str, str] = {}
    for name, root in projects(targets).items():
        for workflow in sorted((root / ".github" / "workflows").glob("*.yml")):
            for number, line in enumerate(workflow.read_text().splitlines(), 1):
                match = USES.match(line)
                if not match:
                    continue
                where = f"{name}/{workflow.name}:{number}"
                assert PINNED_ACTION.match(match["ref"]), f"{where}: {match['ref']}"
                assert RELEASE_COMMENT.match(match["comment"]), f"{where}: no '# vX.Y.Z'"
                action, _, sha = match["ref"].partition("@")
                # One SHA per action across every workflow of every profile.
                assert seen.setdefault(action, sha) == sha, f"{where}: {action} pinned twice"
    assert {"actions/checkout", "astral-sh/setup-uv",
            "aws-actions/configure-aws-credentials"} <= set(seen)


def test_workflows_grant_least_permissions(targets: dict[str, Path]) -> None:
    for name, root in projects(targets).items():
        for workflow in sorted((root / ".github" / "workflows").glob("*.yml")):
            data = yaml.safe_load(workflow.read_text())
            top = data.get("permissions")
            assert top in ({}, {"contents": "read"}), f"{name}/{workflow.name}: {top}"
            for job_name, job in data["jobs"].items():
                granted = {**(top or {}), **job.get("permissions", {})}
                writes = {scope for scope, level in granted.items() if level == "write"}
                # Only the deploy job writes, and only the OIDC token it exchanges.
                assert writes <= ({"id-token"} if workflow.name == "deploy.yml" else set()), (
                    f"{name}/{workflow.name}:{job_name}: {writes}")


def base_images(root: Path) -> set[str]:
    return {match["image"] for dockerfile in (root / "docker").glob("*Dockerfile*")
            for line in dockerfile.read_text().splitlines() if (match := FROM.match(line))}


def test_base_images_are_exact_patch_releases_renovate_keeps_current(
    targets: dict[str, Path],
) -> None:
    for name, root in projects(targets).items():
        python = yaml.safe_load((root / ".copier-answers.yml").read_text())["python_version"]
        images = base_images(root)
        assert len(images) == 1, f"{name}: one base image for every Dockerfile, got {images}"
        (image,) = images
        repository, _, tag = image.partition(":")
        assert repository == "python" and "@" not in tag, image
        assert re.fullmatch(rf"{re.escape(python)}\.\d+-slim-bookworm", tag), (
            f"{name}: {image} is not an exact patch of Python {python} on bookworm")
        renovate = json.loads((root / "renovate.json").read_text())
        assert renovate["pinDigests"] is True
        assert {"dockerfile", "github-actions"} <= set(renovate["enabledManagers"])
        (rule,) = [rule for rule in renovate["packageRules"]
                   if rule.get("matchPackageNames") == ["python"]]
        assert re.fullmatch(rule["allowedVersions"].strip("/"), tag), (
            f"{name}: renovate.json would move {tag} off the project's Python")


def test_images_run_unprivileged_with_a_healthcheck_decision(targets: dict[str, Path]) -> None:
    for name, root in projects(targets).items():
        for dockerfile in sorted((root / "docker").glob("*Dockerfile*")):
            text = dockerfile.read_text()
            runtime = text.split("\nFROM ")[-1]
            users = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
            assert users and users[-1].split(":")[0] not in {"0", "root"}, (
                f"{name}/{dockerfile.name}: last USER {users}")
            assert re.search(r"^HEALTHCHECK\s", runtime, re.MULTILINE), (
                f"{name}/{dockerfile.name}: no HEALTHCHECK (NONE with a reason counts)")
            for line in re.findall(r"(?<!uv )pip install.*", text):
                assert "--no-cache-dir" in line, f"{name}/{dockerfile.name}: {line}"
            for line in re.findall(r"uv pip install.*", text):
                assert "--no-cache" in line, f"{name}/{dockerfile.name}: {line}"
