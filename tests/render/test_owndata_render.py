"""`new --data` on real tables shipped in packages renders a project that compiles and lints.

scikit-learn's breast cancer (binary), wine (multiclass, Parquet) and diabetes
(regression), and palmerpenguins (missing values, string categoricals): each is written
to a file, inferred, rendered, and the project's Python must compile and pass its own
ruff; its data contract must name the table's columns and task. Cheap (no venv, no
pipeline): `make setup && make verify` on three of them is tests/e2e/test_owndata_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from mlops_scaffold.owndata.infer import DataRequest, infer_schema
from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.render.conftest import assert_ruff_clean

pytestmark = pytest.mark.render


def breast_cancer(path: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.to_csv(path / "breast_cancer.csv", index=False)
    return path / "breast_cancer.csv"


def wine(path: Path) -> Path:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0)  # sorted by class
    frame.to_parquet(path / "wine.parquet", index=False)
    return path / "wine.parquet"


def diabetes(path: Path) -> Path:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame.to_csv(path / "diabetes.csv", index=False)
    return path / "diabetes.csv"


def penguins(path: Path) -> Path:
    import palmerpenguins

    frame: pd.DataFrame = palmerpenguins.load_penguins().sample(frac=1.0, random_state=0)
    frame.to_csv(path / "penguins.csv", index=False)
    return path / "penguins.csv"


TABLES: dict[str, tuple[Callable[[Path], Path], str, str, str, str]] = {
    # name: (writer, target, task, a feature column as normalised, profile)
    "breast_cancer": (breast_cancer, "target", "binary", "mean_radius", "startup"),
    "wine": (wine, "target", "multiclass", "alcohol", "startup"),
    "diabetes": (diabetes, "target", "regression", "bmi", "aws"),
    "penguins": (penguins, "species", "multiclass", "island", "startup"),
}


@pytest.mark.parametrize("table", TABLES)
def test_a_real_table_renders_a_project_that_compiles_and_lints(
    tmp_path: Path, table: str
) -> None:
    write, target, task, feature, profile = TABLES[table]
    source = write(tmp_path)
    schema = infer_schema(DataRequest(source, target))
    assert schema.task == task
    project = create_project(
        load_stack(profile=profile), tmp_path / "project", init_git=False, data=schema
    )
    contract = (project / "src" / "project" / "schema.py").read_text(encoding="utf-8")
    assert f'TASK = "{task}"' in contract
    assert f'    "{feature}": ' in contract
    assert (project / "data" / "source" / source.name).read_bytes() == source.read_bytes()
    assert (project / "data" / "source" / f"{source.name}.dvc").is_file()
    assert (project / "tests" / "test_source_data.py").is_file()
    assert not (project / "tests" / "test_data.py").exists()
    if profile == "aws":  # the CDK app's Feast table is the contract's feature view
        cdk = json.loads((project / "infra" / "cdk.json").read_text(encoding="utf-8"))
        assert cdk["context"]["feature_view"] == "features"
    for path in sorted(project.rglob("*.py")):
        compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
    assert_ruff_clean(project)


def test_string_categoricals_with_missing_values_are_served(tmp_path: Path) -> None:
    """The penguins by species (categories and numbers with gaps): the generated project's
    own tests/test_source_data.py, in its pinned environment, fits the pipeline on the
    table and scores request rows (a missing and an unknown category), store rows and the
    warm-up input with the model read back from skops, as serving does."""
    import os
    import subprocess

    from tests.envs import project_env

    schema = infer_schema(DataRequest(penguins(tmp_path), "species"))
    assert {c.name for c in schema.features if c.kind == "categorical"} == {"island", "sex"}
    project = create_project(
        load_stack(profile="startup"), tmp_path / "birds", init_git=False, data=schema
    )
    venv = project_env(project)
    env = {**os.environ, "PYTHONPATH": str(project / "src"),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junit-xml={report}", "tests/test_source_data.py"],
        cwd=project, capture_output=True, text=True, env=env, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert {key: suite.get(key) for key in ("failures", "errors", "skipped")} == dict.fromkeys(
        ("failures", "errors", "skipped"), "0")
    names = {case.get("name") for case in suite.iter("testcase")}
    assert "test_the_served_model_takes_request_rows_and_the_warm_up_input" in names


def test_every_platform_names_the_model_of_params_yaml(tmp_path: Path) -> None:
    """KServe, Seldon and the CDK app name the registered model as params.yaml does (the
    project's, not the churn demo's), and no deployment file keeps a churn name."""
    import re

    import yaml

    schema = infer_schema(DataRequest(breast_cancer(tmp_path), "target"))
    stacks = {"kserve": ("kubernetes", ()), "seldon": ("kubernetes", ("serving_platform=seldon",)),
              "aws": ("aws", ())}
    for variant, (profile, sets) in stacks.items():
        project = create_project(load_stack(profile, None, sets), tmp_path / f"Cells_{variant}",
                                 init_git=False, data=schema)
        expected = f"cells-{variant}-model"  # lower case with '-': a Kubernetes object name
        params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
        assert params["model"]["name"] == expected, variant
        config = (project / "src" / f"cells_{variant}" / "config.py").read_text(encoding="utf-8")
        assert f'EXPERIMENT_NAME = "cells-{variant}"' in config
        named: list[str] = []
        if profile == "aws":
            cdk = json.loads((project / "infra" / "cdk.json").read_text(encoding="utf-8"))
            named.append(cdk["context"]["model_name"])
            deployed = [project / "infra" / "cdk.json"]
        else:
            k8s = project / "deploy" / "k8s"
            deployed = sorted(k8s.rglob("*.yaml"))
            for path in deployed:
                text = path.read_text(encoding="utf-8")
                for doc in yaml.safe_load_all(text):
                    if doc and doc.get("kind") in ("InferenceService", "Model"):
                        # Seldon's challenger Model (canary/shadow overlays): <name>-challenger
                        named.append(doc["metadata"]["name"].removesuffix("-challenger"))
                    for patch in (doc or {}).get("patches", []):
                        if patch["target"].get("kind") in ("InferenceService", "Model"):
                            named.append(patch["target"]["name"])
            # base + the dev and prod overlays; kserve: + serverless and canary overlays,
            # seldon: + the challenger Model
            assert len(named) == {"kserve": 5, "seldon": 4}[variant], (variant, named)
        assert set(named) == {expected}, (variant, named)
        for path in deployed:  # CHURN_THRESHOLD is the serving app's variable name
            text = path.read_text(encoding="utf-8").replace("CHURN_THRESHOLD", "")
            assert not re.search("churn", text, re.IGNORECASE), path
        env = (project / ".env.example").read_text(encoding="utf-8")
        assert "# Probability of target = 1 (churn_probability) at or above which" in env
        assert f"mlflow-artifacts:/cells-{variant}" in env
