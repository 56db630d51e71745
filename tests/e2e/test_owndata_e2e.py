"""`new --data` on four real tables, then `make setup` and `make verify`, as on the demo.

scikit-learn's bundled breast cancer (binary, CSV), wine (multiclass, Parquet) and
diabetes (regression, CSV) are written to files, and palmerpenguins' raw table is copied
as it ships (multiclass by species, CSV: missing values, string categoricals, a date as the
event time, text ids dropped for a generated row id); `mlops-scaffold new --data FILE
--target COLUMN` generates a startup project on each, and its own `make setup` and `make
verify` must pass: tracking, registry and champion, features by entity id and by raw rows with
equal scores (and equal to the champion scored offline), a wrong type refused with a 422
naming the column, metrics, drift report. Each project's task, holdout metric and verify
time are printed (``pytest -s``) and kept in ``owndata-e2e.json`` of the module's temp dir.

Cost: the four projects share one virtual environment (tests/e2e/conftest.py: the
session's first project's ``make setup`` builds it; the others link ``.venv`` to it, and
their ``make setup`` installs only their own package): their dependencies are the same
pins, and compiling the bytecode of 230 packages three times is most of a cold setup.

scikit-learn ships wine sorted by class; without an event-time column the file order
stands for time, so the table is shuffled (fixed seed) as a real extract would be: sorted,
the newest rows (holdout and current batch) would hold one class only, which training
refuses in one line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SetUp
from tests.e2e.test_startup_e2e import run

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("mlops-scaffold")


def breast_cancer(folder: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    path = folder / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    return path


def wine(folder: Path) -> Path:
    from sklearn.datasets import load_wine

    path = folder / "wine.parquet"
    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0)
    frame.to_parquet(path, index=False)
    return path


def diabetes(folder: Path) -> Path:
    from sklearn.datasets import load_diabetes

    path = folder / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    return path


def penguins_raw(folder: Path) -> Path:
    from importlib.resources import files

    path = folder / "penguins_raw.csv"
    path.write_bytes((files("palmerpenguins") / "data" / "penguins-raw.csv").read_bytes())
    return path


# table: (writer, target, task, gate metric, bound the holdout metric must beat, higher is
# better, serving runtime: onnx where the pipeline converts, else sklearn)
TABLES: dict[str, tuple[Callable[[Path], Path], str, str, str, float, bool, str]] = {
    "breast_cancer": (breast_cancer, "target", "binary", "roc_auc", 0.95, True, "onnx"),
    "wine": (wine, "target", "multiclass", "macro_f1", 0.85, True, "onnx"),
    # a mean predictor's RMSE on this target is ~77: the model must do clearly better
    "diabetes": (diabetes, "target", "regression", "rmse", 65.0, False, "onnx"),
    # string categoricals: skl2onnx does not convert the encoders, sklearn serves
    "penguins_raw": (penguins_raw, "Species", "multiclass", "macro_f1", 0.85, True, "sklearn"),
}
# Steps of `make verify` that must have run and passed on every task.
CORE_STEPS = ("dvc repro", "champion", "serving ready", "predict ids", "predict rows",
              "bad payload", "metrics", "drift report")


@dataclass(frozen=True)
class Verified:
    project: Path
    task: str
    metric: str
    holdout: float
    setup_seconds: float
    verify_seconds: float
    report: dict[str, Any]


@pytest.fixture(scope="module")
def verified(
    tmp_path_factory: pytest.TempPathFactory, set_up_with_shared_venv: SetUp
) -> dict[str, Verified]:
    """The four tables: new --data, make setup (one shared venv), make verify."""
    root = tmp_path_factory.mktemp("owndata-e2e")
    results: dict[str, Verified] = {}
    for name, (write, target, *_) in TABLES.items():
        source = write(root)
        project = root / name
        run([str(CLI), "new", str(project), "--profile", "startup", "--data", str(source),
             "--target", target], root, 300)
        setup_seconds = set_up_with_shared_venv(project)
        started = time.monotonic()
        run(["make", "verify"], project, 1200)
        verify_seconds = time.monotonic() - started
        train = json.loads((project / "models" / "train.json").read_text(encoding="utf-8"))
        metric = str(train["metric"])
        contract = (project / "src" / name / "schema.py").read_text(encoding="utf-8")
        found = re.search(r'^TASK = "(\w+)"$', contract, re.MULTILINE)
        assert found, "schema.py names no TASK"
        results[name] = Verified(
            project, found.group(1), metric, float(train["metrics"][f"holdout_{metric}"]),
            setup_seconds, verify_seconds,
            json.loads((project / "reports" / "verify.json").read_text(encoding="utf-8")),
        )
    summary = {name: {"task": v.task, "metric": v.metric, "holdout": round(v.holdout, 4),
                      "setup_s": round(v.setup_seconds, 1), "verify_s": round(v.verify_seconds, 1)}
               for name, v in results.items()}
    (root / "owndata-e2e.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print("\nown-data e2e:", json.dumps(summary))
    return results


@pytest.mark.parametrize("table", TABLES)
def test_new_data_setup_verify(verified: dict[str, Verified], table: str) -> None:
    result = verified[table]
    _, _, task, metric, bound, higher, runtime = TABLES[table]
    assert result.task == task
    assert result.metric == metric, "the champion gate's metric follows the task"
    assert result.holdout > bound if higher else result.holdout < bound, result
    report = result.report
    assert report["ok"] is True
    steps = {step["name"]: step for step in report["steps"]}
    for name in CORE_STEPS:
        assert steps[name]["ok"], steps[name]
    # ONNX Runtime serves where the pipeline converts (numbers only), sklearn elsewhere
    assert f"({runtime})" in str(steps["serving ready"]["detail"]), steps["serving ready"]
    assert (result.project / "reports" / "drift.html").stat().st_size > 0
    leftover = subprocess.run(["pgrep", "-f", str(result.project)], capture_output=True,
                              text=True, check=False)
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"


def test_each_task_answers_in_its_own_shape(verified: dict[str, Verified]) -> None:
    """The served responses differ by task: verify's step details show each one's fields."""
    details = {name: next(str(step["detail"]) for step in v.report["steps"]
                          if step["name"] == "predict rows")
               for name, v in verified.items()}
    assert "labelled target" in details["breast_cancer"]  # the contract's label column
    assert "labels " in details["wine"]
    assert "predictions " in details["diabetes"]
