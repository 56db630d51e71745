"""Security scanners over every built-in profile and the scaffolder itself.

bandit (generated src/ and the scaffolder's src/), hadolint, checkov (dockerfile,
github_actions), zizmor, actionlint, shellcheck (scripts and workflow ``run:`` steps) and
detect-secrets run once per session over all targets (tests/security/scanners.py). A
finding fails unless it is suppressed inline with its reason or listed, with owner and
reason, in known_findings.py; a listed finding that is gone fails too. Each scanner must
also flag the canary's deliberately bad files, so a scanner that silently finds nothing
fails. checkov's kubernetes and cloudformation frameworks run in the generated projects'
own validators, tested in tests/profiles (test_kubernetes.py, test_aws.py).

Missing tools fail under CI=true and skip with the reason elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_scaffold.stacks import builtin_profiles
from tests.security.conftest import CANARY, CANARY_RULES, Findings
from tests.security.known_findings import stale, unexpected
from tests.security.scanners import SCANNERS

pytestmark = pytest.mark.render


def test_every_profile_is_scanned(targets: dict[str, Path]) -> None:
    assert set(builtin_profiles()) <= set(targets)
    assert {"startup", "enterprise", "aws", "kubernetes"} <= set(targets)


@pytest.mark.parametrize("scanner", SCANNERS)
def test_scanner_flags_the_canary(findings: Findings, scanner: str) -> None:
    rules = {item.rule for item in findings[scanner] if item.target == CANARY}
    assert CANARY_RULES[scanner] <= rules, f"{scanner} found only {sorted(rules)}"


@pytest.mark.parametrize("scanner", SCANNERS)
def test_no_unexpected_findings(findings: Findings, scanner: str) -> None:
    real = [item for item in findings[scanner] if item.target != CANARY]
    new = unexpected(real)
    assert not new, "fix, suppress inline with the reason, or route:\n" + "\n".join(
        map(str, new))
    gone = stale(scanner, real)
    assert not gone, "no longer found, delete from known_findings.py:\n" + "\n".join(
        f"{known.path} {known.rule} {known.fragment!r}" for known in gone)
