"""Pairwise coverage of the catalogue: every two slots/settings, every pair of values.

Each pair of values of two slots or closed settings either appears in a rendered stack or
is refused by a compatibility rule with its one-line message. The allowed stacks are
enumerated exactly (every combination checked against the rules); the rendered set starts
from the built-in profiles and adds, greedily, the allowed stack covering most of the pairs
still missing. Every rendered project parses, compiles, passes ruff and
``docker-compose config -q`` and has no unrendered Jinja. The generated pytest runs for a
few stacks chosen so that, with the profiles test_render.py already runs, every value of
every slot and closed setting is tested at least once.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.catalogue import Rule, Value, catalogue, members, spelled
from mlops_scaffold.errors import StackError
from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import Stack, builtin_profiles, load_stack
from tests.envs import project_env
from tests.generated_suite import run_generated_pytest
from tests.render.conftest import compose_config
from tests.render.test_render import LEFTOVER_JINJA, text_files

pytestmark = pytest.mark.render

Pair = tuple[str, str, str, str]
REPO_RUFF = Path(sys.executable).parent / "ruff"

# Stacks whose generated pytest runs here, next to startup, startup-lean and kubernetes
# (test_render.py): together every value of every slot and closed setting is tested.
PYTEST_STACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    # seldon, evidently-grafana, ray-tune, great-expectations
    "k8s-seldon-grafana-ray-ge": (
        "kubernetes",
        ("serving_platform=seldon", "monitoring=evidently-grafana", "tuning=ray-tune",
         "validation=great-expectations", "ci=bitbucket"),
    ),
    # deployment; the New Relic agent in its serving app (developer mode, offline)
    "k8s-deployment": ("kubernetes", ("serving_platform=deployment", "orchestration=dvc",
                                      "ci=gitlab", "apm=newrelic")),
    # every tracker beside MLflow: train and evaluate read back from each, offline (strace);
    # the BentoML serving application (its service module imports in the generated lint);
    # ci=jenkins and vcs=hg (Mercurial) ride along: the generated pytest does not see them
    "startup-trackers": ("startup", ("trackers=wandb,neptune,comet,clearml,tensorboard",
                                     "serving=bentoml", "ci=jenkins", "vcs=hg")),
    # Triton as the serving application: its tests run its inference function on the
    # model family's ONNX graph (Triton itself runs in tests/e2e/test_triton_e2e.py, slow);
    # every other module is the startup run's, skipped as identical
    "startup-triton": ("startup", ("serving=triton",)),
    # TorchServe as the serving application: its tests run the handler on the model
    # family's ONNX graph without Java or torch (TorchServe itself runs in
    # tests/e2e/test_torchserve_e2e.py, marker torch); other modules are the startup run's
    "startup-torchserve": ("startup", ("serving=torchserve",)),
}
# Opt-in (marker `torch`, out of `make test`; `make test-torch`): the generated pytest of a
# model=torch-mlp project trains the MLP in every stage test, and its environment adds
# torch's CPU build (from TORCH_FIND_LINKS, /opt/wheels here: tests/envs.py).
OPT_IN_PYTEST_STACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "startup-torch": ("startup", ("model=torch-mlp",)),
}
ALREADY_TESTED = {"startup": ("startup", ()), "startup-lean": ("startup", ("tuning=none",
                  "ci=none", "serving=mlserver")), "kubernetes": ("kubernetes", ()),
                  # tests/e2e/test_enterprise_e2e.py (slow) runs its pytest against the dev
                  # services it starts (its Feast test needs FEAST_REDIS and the SQL registry)
                  "enterprise": ("enterprise", ()),
                  # tests/profiles/test_aws.py (slow) runs its pytest with Feast on moto_server
                  "aws": ("aws", ()),
                  # tests/e2e/test_tf_serving_e2e.py (slow) runs make setup and verify, its
                  # ruff, mypy and its exporter's pytest (TensorFlow in .venv-tf-serving)
                  "startup-tf-serving": ("startup", ("serving=tf-serving",))}


def pairs_of(selection: dict[str, str]) -> set[Pair]:
    """Every (key, value, key, value) pair ``selection`` contains, keys in question order.

    A multiple slot holding several members (the research profile's ``trackers: [wandb,
    tensorboard]``) covers the pairs of each member alone, the values :func:`values_of` pairs.
    """
    items = [
        (key, member)
        for key, value in selection.items()
        for member in (
            [(m,) for m in value] if isinstance(value, tuple) and len(value) > 1 else [value]
        )
    ]
    return {
        (a, va, b, vb) for (a, va), (b, vb) in itertools.combinations(items, 2) if a != b
    }


def ordered(selection: dict[str, str]) -> dict[str, str]:
    return {key: selection[key] for key in catalogue().all_keys()}


def values_of(key: str) -> tuple[Value, ...]:
    """A key's values to pair: a multiple slot's are none and each member alone."""
    cat = catalogue()
    if cat.is_multiple(key):
        return ((), *((value,) for value in cat.choices(key)))
    return cat.choices(key)


@cache
def _rules_touching(key: str) -> tuple[Rule, ...]:
    """Every rule of the catalogue that ``key`` owns or is the other side of."""
    cat = catalogue()
    return tuple(
        rule
        for assigned in cat.all_keys()
        for owner, other in ((key, assigned), (assigned, key))
        for rule in cat.rules_between(owner, other)
    )


def _consistent(selection: dict[str, Value], key: str) -> bool:
    """Whether no rule between ``key`` and the keys assigned before it is broken.

    The catalogue's own rules (:meth:`Catalogue.rules_between`, what
    :func:`broken_rules` checks), applied as soon as both sides of a rule hold a value.
    """
    return not any(
        rule.owner in selection
        and rule.other in selection
        and rule.value in members(selection[rule.owner])
        and not rule.holds(selection[rule.other])
        for rule in _rules_touching(key)
    )


@cache
def allowed_stacks() -> tuple[tuple[tuple[str, Value], ...], ...]:
    """Every combination of slot and closed-setting values no rule refuses.

    Enumerated depth first in question order, pruning a branch at the first broken rule
    (the same stacks, in the same order, as filtering the whole product, which grows
    with every new value: 40,320 allowed of a product of millions).
    """
    keys = catalogue().all_keys()
    found: list[tuple[tuple[str, Value], ...]] = []
    selection: dict[str, Value] = {}

    def extend(depth: int) -> None:
        if depth == len(keys):
            found.append(tuple(selection.items()))
            return
        key = keys[depth]
        for value in values_of(key):
            selection[key] = value
            if _consistent(selection, key):
                extend(depth + 1)
            del selection[key]

    extend(0)
    return tuple(found)


@cache
def covering_plan() -> tuple[dict[str, dict[str, str]], set[Pair], set[Pair]]:
    """(stacks to render by name, pairs they cover, pairs no allowed stack has)."""
    allowed = [dict(items) for items in allowed_stacks()]
    cat = catalogue()
    every = {
        (a, va, b, vb)
        for a, b in itertools.combinations(cat.all_keys(), 2)
        for va in values_of(a)
        for vb in values_of(b)
    }
    # Pairs as bits of one integer per stack: the greedy step below scans every allowed
    # stack once per chosen stack, and an AND of two integers is what keeps that fast.
    bit = {pair: 1 << index for index, pair in enumerate(sorted(every, key=repr))}

    def mask(pairs: set[Pair]) -> int:
        return sum(bit[pair] for pair in pairs)

    candidates = [(selection, mask(pairs_of(selection))) for selection in allowed]
    possible_mask = 0
    for _, pairs in candidates:
        possible_mask |= pairs
    possible = {pair for pair, value in bit.items() if possible_mask & value}
    stacks = {name: ordered(load_stack(profile=name).selection()) for name in builtin_profiles()}
    uncovered = possible_mask
    for selection in stacks.values():
        uncovered &= ~mask(pairs_of(selection))
    while uncovered:
        selection, pairs = max(candidates, key=lambda item: (item[1] & uncovered).bit_count())
        uncovered &= ~pairs
        stacks[f"pairwise-{len(stacks) - len(builtin_profiles()) + 1:02d}"] = selection
    return stacks, possible, every - possible


def overrides_for(selection: dict[str, str], base: Stack) -> list[str]:
    current = base.selection()
    return [spelled(key, value) for key, value in selection.items() if current[key] != value]


def test_every_pair_is_rendered_or_refused_with_one_line() -> None:
    stacks, possible, refused = covering_plan()
    covered = set().union(*(pairs_of(selection) for selection in stacks.values()))
    assert covered == possible
    startup = load_stack(profile="startup")
    for a, va, b, vb in sorted(refused):
        overrides = overrides_for({**startup.selection(), a: va, b: vb}, startup)
        with pytest.raises(StackError) as caught:
            load_stack(profile="startup", overrides=overrides)
        message = caught.value.message
        assert "\n" not in message
        assert re.search(r" (requires|conflicts with) ", message), message
        assert spelled(a, va) in message or spelled(b, vb) in message, message
    print(f"\npairwise: {len(stacks)} stacks ({len(builtin_profiles())} profiles), "
          f"{len(possible)} pairs covered, {len(refused)} pairs refused by a rule")


@pytest.fixture(scope="module")
def pairwise_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Render every stack of the covering plan (without git) and the pytest stacks."""
    root = tmp_path_factory.mktemp("pairwise")
    stacks, _, _ = covering_plan()
    projects = {}
    for name, selection in stacks.items():
        base_name = name if name in builtin_profiles() else "startup"
        base = load_stack(profile=base_name)
        stack = load_stack(profile=base_name, overrides=overrides_for(selection, base))
        projects[name] = create_project(stack, root / name.replace("-", "_"), init_git=False)
    for name, (profile, overrides) in {**PYTEST_STACKS, **OPT_IN_PYTEST_STACKS}.items():
        # git-initialised, as users get them (DVC and the generated tests expect a repo)
        stack = load_stack(profile=profile, overrides=list(overrides))
        target = root / f"pytest_{name.replace('-', '_')}"
        projects[f"pytest-{name}"] = create_project(stack, target)
    return projects


def compose_config_problem(project: Path) -> str | None:
    """``docker-compose config -q``'s complaint, None when valid or not installed (not CI)."""
    result = compose_config(project)
    return None if result is None or result.returncode == 0 else result.stderr


def test_every_rendered_stack_parses_compiles_and_lints(
    pairwise_projects: dict[str, Path],
) -> None:
    problems: list[str] = []
    for name, project in pairwise_projects.items():
        if name.startswith("pytest-"):
            continue  # copies of plan combinations for the pytest runs, git-initialised
        for path in project.rglob("*"):
            if not path.is_file() or ".git" in path.relative_to(project).parts:
                continue
            relative = f"{name}/{path.relative_to(project)}"
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                if path.suffix in {".yml", ".yaml"}:
                    list(yaml.safe_load_all(text))
                elif path.suffix == ".toml":
                    tomllib.loads(text)
                elif path.suffix == ".json":
                    json.loads(text)
                elif path.suffix == ".py":
                    compile(text, str(path), "exec", dont_inherit=True)  # as py_compile does
            except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError, SyntaxError) as exc:
                problems.append(f"{relative}: {str(exc).splitlines()[0]}")
        leftovers = [
            f"{name}/{path.relative_to(project)}:{number}"
            for path in text_files(project)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if LEFTOVER_JINJA.search(line)
        ]
        problems += [f"{where}: unrendered Jinja" for where in leftovers]
        problems += [f"{name}/{p}: left as a template" for p in project.rglob("*.jinja")]
        lint = subprocess.run([str(REPO_RUFF), "check", "--no-cache", "--quiet", "."],
                              cwd=project, capture_output=True, text=True, check=False)
        if lint.returncode != 0:
            problems.append(f"{name}: ruff: {lint.stdout.strip()[:2000]}")
        compose = compose_config_problem(project)
        if compose is not None:
            problems.append(f"{name}: docker-compose config: {compose.strip()[:1000]}")
    assert problems == []


def test_pytest_stacks_cover_every_value() -> None:
    cat = catalogue()
    tested: dict[str, set[str]] = {key: set() for key in cat.all_keys()}
    stacks = (*ALREADY_TESTED.values(), *PYTEST_STACKS.values(), *OPT_IN_PYTEST_STACKS.values())
    for profile, overrides in stacks:
        stack = load_stack(profile=profile, overrides=list(overrides))
        for key, value in stack.selection().items():
            tested[key].update(members(value))  # each member of a multiple slot
    assert {key: set(cat.choices(key)) for key in cat.all_keys()} == tested


@pytest.mark.parametrize(
    "name",
    [*PYTEST_STACKS, *(pytest.param(n, marks=pytest.mark.torch) for n in OPT_IN_PYTEST_STACKS)],
)
def test_generated_pytest_passes(pairwise_projects: dict[str, Path], name: str) -> None:
    project = pairwise_projects[f"pytest-{name}"]
    venv = project_env(project)
    env = {**os.environ, "PYTHONPATH": str(project / "src"),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    tests, skipped = run_generated_pytest(project, venv / "bin" / "python", env)
    print(f"{name}: modules covered by an earlier identical run: {skipped}")
    if tests is not None:
        # exit 0 means tests ran and passed (pytest exits 5 when it collects none); the
        # summary line is not asserted: the project's own -q addopts can make it quieter.
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    package = next(path.name for path in (project / "src").iterdir() if path.is_dir())
    # The rendered verify plan imports; it holds a step only for a stage the stack rendered.
    code = f"from {package}.verify.plan import PLAN; print(','.join(s.name for s in PLAN))"
    plan = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=project,
                          capture_output=True, text=True, env=env, check=True).stdout
    steps = plan.strip().split(",")
    assert len(steps) == len(set(steps)), steps
    src = project / "src" / package
    if (src / "verify" / "enterprise.py").is_file():
        assert ("ray tune" in steps) == (src / "pipeline" / "tune_ray.py").is_file()
        assert ("validation" in steps) == (src / "pipeline" / "validate.py").is_file()
