"""``_exclude`` matching agrees with pathspec, the library Copier matches with."""

from __future__ import annotations

import itertools

import pytest
from pathspec import PathSpec

from mlops_scaffold.render.gitignore import matcher

PATTERNS = [
    "dags", "dags/", "/dags", "/dags/", "src/pkg/tune.py", "*.json",
    "deploy/k8s/schemas/*-mlops.seldon.io-v1alpha1.json", "**/x", "a/**", "a/**/b", "**",
    "**/", "/", "*", "*/", "**/*", "**/*/**", "a/*", "a/*/", "?.py", "a?c", "!keep.py",
    "!a/b", "a/b/", "  ", "# comment", ".github", "docs/**/*.md", "*/b", "a/**/", "/**/b",
    "x/**/**/y", "a//b", "tests/test_aws.py  ", "*-x.*",
]
PATHS = [
    "dags", "dags/a.py", "x/dags", "x/dags/y", "src/pkg/tune.py", "src/pkg/tune.py/z",
    "a.json", "d/a.json", "deploy/k8s/schemas/model-mlops.seldon.io-v1alpha1.json",
    "deploy/k8s/schemas", "x", "q/x", "a", "a/b", "a/c/b", "a/b/c", "b", "keep.py", "a.py",
    "ab.py", "abc", "a/b/c/d", ".github", ".github/workflows/ci.yml", "docs/a.md",
    "docs/x/y/a.md", "c/b", "tests/test_aws.py", "x/y", "x/q/y", "f-x.json", "/dags",
    "./dags",
]


@pytest.mark.parametrize("size", [1, 2])
def test_matches_like_pathspec(size: int) -> None:
    for combo in itertools.combinations(PATTERNS, size):
        spec = PathSpec.from_lines("gitignore", combo)
        ours = matcher(combo)
        for path in PATHS:
            assert ours(path) == spec.match_file(path), (combo, path)


def test_last_matching_pattern_decides() -> None:
    patterns = ["lib/**/generated.py", "!lib/keep/generated.py", "lib/keep/x/generated.py"]
    spec = PathSpec.from_lines("gitignore", patterns)
    ours = matcher(patterns)
    for path in ("lib/a/generated.py", "lib/keep/generated.py", "lib/keep/x/generated.py"):
        assert ours(path) == spec.match_file(path)


def test_brackets_and_escapes_are_left_to_pathspec() -> None:
    patterns = ["[ab].txt", "\\#literal", "x\\ "]
    ours = matcher(patterns)
    for path in ("a.txt", "c.txt", "#literal", "x "):
        assert ours(path) == PathSpec.from_lines("gitignore", patterns).match_file(path)
