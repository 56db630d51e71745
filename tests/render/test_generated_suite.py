"""The fingerprints that let a generated test module run once for equal code (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.generated_suite import fingerprints, package_of

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("twins")
    stack = load_stack(profile="startup")
    return (create_project(stack, root / "gen_one", init_git=False),
            create_project(stack, root / "gen_two", init_git=False))


def changed_copy(root: Path, name: str, relative: str) -> dict[str, str]:
    """Fingerprints of a startup render whose package file ``relative`` has one more line."""
    project = create_project(load_stack(profile="startup"), root / name, init_git=False)
    path = project / "src" / package_of(project) / relative
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    return fingerprints(project)


def test_the_same_stack_under_another_name_has_the_same_fingerprints(
    twins: tuple[Path, Path],
) -> None:
    one, two = twins
    assert fingerprints(one) == fingerprints(two)
    assert "tests/test_serving_faults.py" in fingerprints(one)


def test_a_change_reaches_exactly_the_modules_whose_code_it_touches(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    before = fingerprints(twins[0])
    after = changed_copy(tmp_path, "gen_three", "serving/limits.py")
    moved = {module for module in before if before[module] != after[module]}
    # serving/limits.py is imported by the app (through serving/app.py), not by the pipeline
    assert "tests/test_serving_faults.py" in moved
    assert "tests/test_api.py" in moved
    assert "tests/test_data.py" not in moved
    assert "tests/test_monitor.py" not in moved


def test_a_params_section_counts_where_the_code_names_it(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    one, _ = twins
    before = fingerprints(one)
    changed = create_project(load_stack(profile="startup"), tmp_path / "gen_four",
                             init_git=False)
    params_file = changed / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["tune"]["n_trials"] += 1
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    after = fingerprints(changed)
    assert before["tests/test_tune.py"] != after["tests/test_tune.py"]


def test_a_stage_run_in_a_subprocess_is_part_of_the_fingerprint(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    """test_data_check runs ``python -m <package>.pipeline.features``: named by a string only."""
    before = fingerprints(twins[0])
    after = changed_copy(tmp_path, "gen_five", "pipeline/features.py")
    assert before["tests/test_data_check.py"] != after["tests/test_data_check.py"]


def test_a_module_named_in_an_f_string_is_part_of_the_fingerprint(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    """test_train's subprocess code imports ``f"{package}.serving.app"``, nothing else does.

    The app's routes (``serving/routes.py``) are imported by no module test_train imports,
    so only the f-string brings them into its fingerprint.
    """
    before = fingerprints(twins[0])
    after = changed_copy(tmp_path, "gen_six", "serving/routes.py")
    assert before["tests/test_train.py"] != after["tests/test_train.py"]
    assert before["tests/test_data.py"] == after["tests/test_data.py"]
