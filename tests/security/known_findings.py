"""Findings the scanner suite accepts, each with its owner and why it is still there.

This is the suite's baseline (detect-secrets' included): matched by scanner, path, rule
and a fragment of the flagged line, never by line number, so unrelated edits do not churn
it. Prefer fixing, or an inline suppression with its reason next to the line (``# nosec
BXXX reason``, ``# hadolint ignore=DLxxxx``, ``# zizmor: ignore[audit]``, ``# shellcheck
disable=SCxxxx``, ``# pragma: allowlist secret``). An entry lives here only while the file
belongs to someone else's change; an entry that no longer matches anything fails the
suite, so fixing the line means deleting its entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.security.scanners import Finding


@dataclass(frozen=True)
class Known:
    """An accepted finding: ``fragment`` must occur in the flagged line."""

    scanner: str
    path: str
    rule: str
    fragment: str
    owner: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` is this accepted one (any target holding the file)."""
        return (finding.scanner, finding.path, finding.rule) == (
            self.scanner, self.path, self.rule) and self.fragment in finding.text


UNOWNED = "generated platform helpers"

KNOWN: tuple[Known, ...] = (
    # ---- bandit ------------------------------------------------------------------------
    # The fragments below quote other files' false positives, not secrets.
    # pragma: allowlist nextline secret
    Known("bandit", "src/{package}/platform/aws.py", "B105", '"AWS_SECRET_ACCESS_KEY": "testing"',
          UNOWNED, "moto's documented dummy credentials for the local endpoint, never AWS's; "
          "wants `# nosec B105` (the line is at the length limit)."),
)


def unexpected(findings: list[Finding]) -> list[Finding]:
    """Findings no known entry accepts."""
    return [item for item in findings if not any(known.matches(item) for known in KNOWN)]


def stale(scanner: str, findings: list[Finding]) -> list[Known]:
    """Known entries of ``scanner`` that matched nothing: fixed, so to be deleted."""
    return [known for known in KNOWN if known.scanner == scanner
            and not any(known.matches(item) for item in findings)]
