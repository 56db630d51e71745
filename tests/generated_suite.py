"""Run a generated project's own pytest, each test module once per distinct code under test.

The render tiers run the generated suites of several stacks (three variants in
test_render.py, the pairwise stacks in test_pairwise.py). Most of a generated suite is
the same across stacks: a module such as ``tests/test_serving_faults.py`` tests the
serving app, which no slot changes. Running it again on another stack proves nothing new
and costs minutes, so a module runs only when its *fingerprint* has not run yet in this
session. The fingerprint is the content, with the package name normalised, of:

* the test module, every non-test file under ``tests/`` (conftest, helpers, configs);
* every ``src`` module the module, the conftest or the helpers it names import, through
  the package's own imports, plus the modules they name as strings: dotted paths in code
  run in a subprocess (``f"from {package}.serving.app import ..."``) and stage names
  (``_run_stage("features")`` runs ``python -m <package>.pipeline.features``);
* the project files the code reads at run time: ``feature_repo/`` and the sections of
  ``params.yaml`` that the code or the tests name.

The startup end-to-end test (tests/e2e, which runs before the render tier) runs the
startup project's whole suite as its workflow's ``make test`` job; once it passed,
:func:`record_passed_suite` marks its fingerprints covered.

Two stacks whose fingerprints of a module are equal run the same test code against the
same code under test with the same fixtures; dependencies are exact pins resolved
together for every stack (tests/security/test_pins.py), so the one environment
difference is packages the module does not import. Run one stack alone (``-k``) and its
whole suite runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
from pathlib import Path

import yaml

#: fingerprint -> "<project>: tests/<module>" of the run that covered it, per session.
_COVERED: dict[str, str] = {}


def package_of(project: Path) -> str:
    """The one package under ``src/`` of a generated project."""
    return next(path.name for path in sorted((project / "src").iterdir()) if path.is_dir())


def _normalised(text: str, *names: str) -> str:
    """``text`` with every whole-word use of the package and project names made neutral.

    Give the projects compared distinctive package names (``gen_startup``, not
    ``startup``, which is also a serving mode): a name that is also an ordinary word
    makes texts differ, so their modules run again (slower, never wrong).
    """
    for name in names:
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "PKG", text)
    return text


def _params_read(project: Path, code_text: str) -> str:
    """The ``params.yaml`` sections whose name the code or tests mention, as canonical JSON.

    Stacks differ in whole sections (``tune:`` only where a tuning stage exists); a test
    whose code never names a section does not read it.
    """
    path = project / "params.yaml"
    if not path.is_file():
        return ""
    params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    read = {key: value for key, value in params.items()
            if re.search(rf"(?<!\w){re.escape(str(key))}(?!\w)", code_text)}
    return json.dumps(read, sort_keys=True, default=str)


def _module_path(src: Path, dotted: str) -> Path | None:
    """The file of ``dotted`` (a module or a package) under ``src``, if it is the project's."""
    base = src.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(node: ast.AST, package: str, here: list[str]) -> set[str]:
    """Dotted names of the project's modules an import statement names (else nothing).

    ``here`` is the package of the importing module (its relative imports resolve there).
    """
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == package}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        anchor = here[: len(here) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    elif node.module and node.module.split(".")[0] == package:
        base = node.module
    else:
        return set()
    return {base} | {f"{base}.{alias.name}" for alias in node.names}


def _imports(path: Path, src: Path, package: str) -> set[str]:
    """Dotted names of the project's modules ``path`` imports (absolute and relative)."""
    here = list(path.relative_to(src).parent.parts)  # the package ``path`` belongs to
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {name for node in ast.walk(tree) for name in _imported(node, package, here)}


def _closure(
    seeds: set[str], src: Path, package: str, parsed: dict[Path, set[str]]
) -> dict[str, Path]:
    """The project modules reachable from ``seeds`` (with every package ``__init__`` on the way).

    ``parsed`` caches each module's imports across the closures of one project.
    """
    files: dict[str, Path] = {}
    todo = set(seeds)
    while todo:
        dotted = todo.pop()
        parts = dotted.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            path = _module_path(src, name)
            if path is None or name in files:
                continue
            files[name] = path
            if path not in parsed:
                parsed[path] = _imports(path, src, package)
            todo |= parsed[path] - set(files)
    return files


def _seeds(texts: list[str], src: Path, package: str) -> set[str]:
    """Project modules the test texts import or name (``"features"`` as a stage).

    A bare name is looked up in the package and in each of its subpackages
    (``pipeline.features``); an f-string is read with each replacement field standing for
    the package (``f"from {package}.config import ..."``). Both over-approximate: names
    that are no module are dropped, and a seed too many only makes a module run again.
    """
    seeds: set[str] = set()
    dotted_use = re.compile(rf"(?<![\w.]){re.escape(package)}((?:\.\w+)+)")
    root = src / package
    prefixes = [package] + [
        f"{package}.{path.name}"
        for path in sorted(root.iterdir())
        if (path / "__init__.py").is_file()
    ]
    for text in texts:
        for node in ast.walk(ast.parse(text)):
            seeds |= _imported(node, package, [])  # tests import absolutely
            if isinstance(node, ast.JoinedStr):
                value = "".join(
                    part.value if isinstance(part, ast.Constant) else package
                    for part in node.values
                )
                seeds |= {package + dotted for dotted in dotted_use.findall(value)}
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # code run in a subprocess ("from pkg.serving.app import ...") and stages
                # named as strings ("features"); names that are no module are dropped below
                seeds |= {package + dotted for dotted in dotted_use.findall(node.value)}
                if re.fullmatch(r"[a-z_][a-z0-9_]*", node.value):
                    seeds |= {f"{prefix}.{node.value}" for prefix in prefixes}
    return {seed for seed in seeds if _module_path(src, seed) is not None} | {package}


def fingerprints(project: Path) -> dict[str, str]:
    """``tests/test_*.py`` of ``project`` -> the fingerprint of what that module tests."""
    package = package_of(project)
    names = (package, project.name)
    src = project / "src"
    tests = project / "tests"
    helpers = sorted(
        path for path in tests.rglob("*")
        if path.is_file() and not path.name.startswith("test_") and "__pycache__" not in path.parts
    )
    runtime = [*sorted((project / "feature_repo").rglob("*.py")),
               *sorted((project / "feature_repo").rglob("*.yaml"))]
    shared = [path for path in (*helpers, *runtime) if path.is_file()]
    result = {}
    parsed: dict[Path, set[str]] = {}
    for module in sorted(tests.glob("test_*.py")):
        text = module.read_text(encoding="utf-8")
        # the conftest runs for every module; another helper where the module names it
        used = [helper.read_text(encoding="utf-8") for helper in helpers
                if helper.suffix == ".py" and (helper.name == "conftest.py" or helper.stem in text)]
        code = _closure(_seeds([text, *used], src, package), src, package, parsed)
        digest = hashlib.sha256()
        texts = []
        for path in (module, *shared, *(code[name] for name in sorted(code))):
            texts.append(path.read_text(encoding="utf-8"))
            digest.update(_normalised(path.relative_to(project).as_posix(), *names).encode())
            digest.update(b"\0")
            digest.update(_normalised(texts[-1], *names).encode())
            digest.update(b"\0")
        digest.update(_normalised(_params_read(project, "\n".join(texts)), *names).encode())
        result[module.relative_to(project).as_posix()] = digest.hexdigest()
    return result


def record_passed_suite(prints: dict[str, str], label: str) -> None:
    """Mark covered the fingerprints of a whole suite that ran elsewhere and passed.

    ``prints`` are :func:`fingerprints` of the project taken before the run (the run
    writes files); call this only after the project's pytest exited 0 over every module.
    """
    for module, digest in prints.items():
        _COVERED.setdefault(digest, f"{label}: {module}")


def run_generated_pytest(
    project: Path, python: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str] | None, dict[str, str]]:
    """Run the modules of ``project``'s suite no earlier run covered; return the run and skips.

    The skips map each module left out to the run that covered the same fingerprint. The
    run is None when every module was covered already.
    """
    prints = fingerprints(project)
    skipped = {module: _COVERED[digest] for module, digest in prints.items() if digest in _COVERED}
    to_run = [module for module in prints if module not in skipped]
    if not to_run:
        return None, skipped
    result = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", *to_run],
        cwd=project, capture_output=True, text=True, env=env, check=False,
    )
    for module in to_run:
        _COVERED.setdefault(prints[module], f"{project.name}: {module}")
    return result, skipped
