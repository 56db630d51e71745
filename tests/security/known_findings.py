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


SERVING = "generated serving"
ENTERPRISE_FILES = "enterprise compose/.env/entrypoints"
UNOWNED = "generated platform helpers (no owner in issue 14: route)"
SCAFFOLDER = "scaffolder src (no owner in issue 14: route)"

KNOWN: tuple[Known, ...] = (
    # ---- bandit ------------------------------------------------------------------------
    Known("bandit", "src/{package}/serving/__main__.py", "B104", 'host="0.0.0.0" if sagemaker',
          SERVING, "SageMaker's container contract requires listening on all interfaces "
          "inside the container; outside SageMaker the configured (loopback) host is used. "
          "Wants an inline `# nosec B104` with that reason."),
    Known("bandit", "src/{package}/serving/fetch_model.py", "B403", "import pickle",
          SERVING, "loads the champion the pipeline itself logged; wants `# nosec B403`."),
    Known("bandit", "src/{package}/serving/model.py", "B403", "import pickle", SERVING,
          "as above."),
    Known("bandit", "src/{package}/serving/model.py", "B301", "pickle.loads(payload)", SERVING,
          "unpickles the model artifact fetched from the project's own registry; wants a "
          "`# nosec B301` stating that trust boundary (or skops/ONNX only)."),
    # The fragments below quote other files' false positives, not secrets.
    # pragma: allowlist nextline secret
    Known("bandit", "src/{package}/aws.py", "B105", '"AWS_SECRET_ACCESS_KEY": "testing"',
          UNOWNED, "moto's documented dummy credentials for the local endpoint, never AWS's; "
          "wants `# nosec B105`."),
    Known("bandit", "src/{package}/services.py", "B607", "subprocess.run(", UNOWNED,
          "`uv venv` and `uv pip install` (moto's venv) find uv on PATH, as the Makefile "
          "does; wants shutil.which or `# nosec B607`."),
    Known("bandit", "src/{package}/services.py", "B606", "os.execve(command[0]", UNOWNED,
          "exec of a fixed, absolute command list; wants `# nosec B606`."),
    Known("bandit", "src/mlops_scaffold/containers/baseimages.py", "B607", "subprocess.run(",
          SCAFFOLDER, "umount/mount found on PATH (root-only harness); wants absolute paths "
          "or `# nosec B607`."),
    Known("bandit", "src/mlops_scaffold/docker_runtime.py", "B310",
          "urllib.request.urlopen(request", SCAFFOLDER,
          "the URL is built from 127.0.0.1 and a port, http only; wants `# nosec B310`."),
    Known("bandit", "src/mlops_scaffold/docker_runtime.py", "B101",
          "assert process.stdout is not None", SCAFFOLDER,
          "type-narrowing assert removed under -O; wants an explicit check."),
    Known("bandit", "src/mlops_scaffold/verify.py", "B101", "assert process.stdout is not None",
          SCAFFOLDER, "same: an assert in shipped code."),
    # ---- shellcheck --------------------------------------------------------------------
    # ---- detect-secrets ----------------------------------------------------------------
    Known("detect-secrets", "src/{package}/serving/auth.py", "Secret Keyword",
          # pragma: allowlist nextline secret
          'API_KEY_HEADER = "X-API-Key"', SERVING,
          "a header name, not a secret; wants `# pragma: allowlist secret`."),
    Known("detect-secrets", "src/{package}/serving/auth.py", "Secret Keyword",
          # pragma: allowlist nextline secret
          'API_KEY_ENV = "SERVING_API_KEY"', SERVING,
          "an environment variable name, not a secret; as above."),
    Known("detect-secrets", ".env.example", "Basic Auth Credentials",
          "mlops:mlops-dev-password@", ENTERPRISE_FILES,
          "a working default password in .env.example: issue 14 (secure defaults) removes "
          "it; then delete this entry."),
    Known("detect-secrets", "docker/mlflow-enterprise-entrypoint.sh", "Basic Auth Credentials",
          "user:password@host", ENTERPRISE_FILES,
          "a URL shape in a comment; wants `# pragma: allowlist secret`."),
)


def unexpected(findings: list[Finding]) -> list[Finding]:
    """Findings no known entry accepts."""
    return [item for item in findings if not any(known.matches(item) for known in KNOWN)]


def stale(scanner: str, findings: list[Finding]) -> list[Known]:
    """Known entries of ``scanner`` that matched nothing: fixed, so to be deleted."""
    return [known for known in KNOWN if known.scanner == scanner
            and not any(known.matches(item) for item in findings)]
