"""``python lint.py [cdk.out]``: cfn-lint and checkov on every synthesized template.

Fails (exit 1) when there is no template, when cfn-lint reports anything at all, when
checkov fails a check that is not suppressed in the template's metadata with a reason,
or when checkov could not parse a template (checkov itself exits 0 on parsing errors,
which would make a broken template look clean). Offline: ``BC_SKIP_MAPPING=TRUE`` and
``--skip-download`` keep checkov off the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def templates(out_dir: Path) -> list[Path]:
    """Every CloudFormation template of a ``cdk.out`` directory."""
    return sorted(out_dir.glob("*.template.json"))


def run_cfn_lint(found: list[Path]) -> list[str]:
    """cfn-lint problems (any level counts) as lines; [] when clean."""
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "parseable", *map(str, found)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    problems = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 and not problems:
        problems = [f"cfn-lint exited {result.returncode}: {result.stderr.strip()[-500:]}"]
    return problems


def run_checkov(found: list[Path]) -> tuple[list[str], int, int]:
    """checkov failures and parsing errors as lines, plus (passed, skipped) counts."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    command = [str(BIN / "checkov"), "--framework", "cloudformation", "--skip-download",
               "--quiet", "--compact", "--output", "json"]  # fmt: skip
    for path in found:
        command += ["--file", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov gave no JSON (exit {result.returncode}): {result.stderr[-500:]}"], 0, 0
    if isinstance(reports, dict):
        reports = [reports]
    problems: list[str] = []
    passed = skipped = 0
    for report in reports:
        summary = report.get("summary", {})
        passed += int(summary.get("passed", 0))
        skipped += int(summary.get("skipped", 0))
        if int(summary.get("parsing_errors", 0)):
            problems.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
        for failed in report.get("results", {}).get("failed_checks", []):
            problems.append(
                f"{failed['check_id']} {failed['resource']}: {failed['check_name']}"
                f" ({Path(failed['file_path']).name})"
            )
    if not reports or all(int(r.get("summary", {}).get("resource_count", 0)) == 0
                          for r in reports):
        problems.append("checkov scanned no resources")
    return problems, passed, skipped


def main(argv: list[str]) -> int:
    """Lint the templates of ``argv[0]`` (default ``cdk.out``); print a verdict."""
    out_dir = Path(argv[0] if argv else "cdk.out")
    found = templates(out_dir)
    if not found:
        print(f"infra-lint: no *.template.json in {out_dir}; run `make synth` first",
              file=sys.stderr)
        return 1
    names = ", ".join(path.name for path in found)
    lint_problems = run_cfn_lint(found)
    checkov_problems, passed, skipped = run_checkov(found)
    for line in lint_problems:
        print(f"cfn-lint: {line}")
    for line in checkov_problems:
        print(f"checkov: {line}")
    if lint_problems or checkov_problems:
        print(f"infra-lint FAILED on {names}: {len(lint_problems)} cfn-lint, "
              f"{len(checkov_problems)} checkov problem(s)")
        return 1
    print(f"infra-lint passed: {names}: cfn-lint clean; checkov {passed} passed, "
          f"{skipped} suppressed with a reason, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
