"""The kubernetes profile: manifests per serving choice, offline validation, Kubeflow pipeline.

The validators are the generated project's own ``deploy/k8s/validate.py`` run with the
pinned tools of its ``deploy/k8s/requirements.txt`` (the environment ``make
k8s-validate`` builds), so the scaffolder checks exactly what a project checks. Every
validator is also shown to fail on a deliberately broken manifest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.envs import requirements_env

SERVING = ("kserve", "seldon", "deployment")  # the serving_platform values on Kubernetes


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One kubernetes project per serving choice, plus one without tuning."""
    root = tmp_path_factory.mktemp("k8s")
    rendered = {
        serving: create_project(
            load_stack("kubernetes", None, (f"serving_platform={serving}",)),
            root / serving,
            init_git=False,
        )
        for serving in SERVING
    }
    rendered["no-tuning"] = create_project(
        load_stack("kubernetes", None, ("tuning=none",)), root / "no-tuning", init_git=False
    )
    return rendered


def run_validate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    venv = requirements_env(project / "deploy" / "k8s" / "requirements.txt")
    return subprocess.run(
        [str(venv / "bin" / "python"), "deploy/k8s/validate.py", *args],
        cwd=project, capture_output=True, text=True, check=False, timeout=600,
    )


# ---- the profile and its files (fast) -----------------------------------------------


def test_profile_picks_kubernetes_components() -> None:
    stack = load_stack("kubernetes")
    assert stack.slots.deploy == "kubernetes"
    assert (stack.slots.serving, stack.slots.serving_platform) == ("fastapi", "kserve")
    assert stack.slots.orchestration == "kubeflow"


@pytest.mark.render
def test_serving_choice_selects_its_resources(projects: dict[str, Path]) -> None:
    expected = {
        "kserve": "inferenceservice.yaml",
        "seldon": "seldon.yaml",
        "deployment": "serving.yaml",
    }
    for serving, keep in expected.items():
        base = projects[serving] / "deploy" / "k8s" / "base"
        present = {path.name for path in base.glob("*.yaml")} & set(expected.values())
        assert present == {keep}, serving
        resources = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
        assert keep in resources
        schemas = {p.name for p in (base.parent / "schemas").glob("*.json")}
        crds = {"kserve": {"inferenceservice-serving.kserve.io-v1beta1.json"},
                "seldon": {"model-mlops.seldon.io-v1alpha1.json",
                           "server-mlops.seldon.io-v1alpha1.json",
                           "experiment-mlops.seldon.io-v1alpha1.json"},
                "deployment": set()}[serving]
        assert schemas == crds, serving
        # The FastAPI app ships in every variant: it is the image the cluster runs, and
        # every Kubernetes platform adds its V2 protocol routes (SageMaker's only on AWS).
        package = projects[serving].name.replace("-", "_")
        assert (projects[serving] / "src" / package / "serving" / "v2.py").is_file()
        assert (projects[serving] / "tests" / "test_v2.py").is_file()
        assert not (projects[serving] / "src" / package / "serving" / "sagemaker.py").exists()
        assert (projects[serving] / "docker-compose.yml").is_file()
        assert (projects[serving] / "pipelines" / "kfp_pipeline.py").is_file()
        makefile = (projects[serving] / "Makefile").read_text()
        assert "k8s-validate:" in makefile and "kfp-compile:" in makefile


@pytest.mark.render
def test_other_profiles_have_no_kubernetes_files(tmp_path: Path) -> None:
    project = create_project(load_stack("startup"), tmp_path / "plain", init_git=False)
    assert not (project / "deploy").exists()
    assert not (project / "pipelines").exists()
    serving = project / "src" / "plain" / "serving"
    assert not (serving / "v2.py").exists() and not (serving / "sagemaker.py").exists()
    assert "ROUTE_MODULES: tuple[RouteModule, ...] = ()" in (serving / "routes.py").read_text()
    makefile = (project / "Makefile").read_text()
    assert "k8s-validate" not in makefile and "kfp-compile" not in makefile


# ---- offline validation (slow: builds the pinned tool env once, checkov ~20 s a run) --


@pytest.mark.slow
@pytest.mark.parametrize("serving", SERVING)
def test_k8s_validate_passes(projects: dict[str, Path], serving: str) -> None:
    result = run_validate(projects[serving])
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("yamllint", "kustomize", "schema", "checkov"):
        assert f"ok   {check}" in result.stdout, check
    assert "FAIL" not in result.stdout
    for overlay in ("dev", "prod"):
        rendered = projects[serving] / "build" / "k8s" / f"{overlay}.yaml"
        kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered.read_text()) if doc}
        assert {"Namespace", "NetworkPolicy", "ServiceAccount", "Deployment",
                "PersistentVolumeClaim"} <= kinds
        crd_kind = {"kserve": "InferenceService", "seldon": "Model",
                    "deployment": "HorizontalPodAutoscaler"}[serving]
        assert crd_kind in kinds
    # The challenger rollout overlays (rollout.env: SERVING_CANARY_PERCENT=10) validate too.
    canary, shadow = (
        [doc for doc in yaml.safe_load_all(
            (projects[serving] / "build" / "k8s" / f"{mode}.yaml").read_text()) if doc]
        for mode in ("canary", "shadow")
    )
    if serving == "kserve":
        (service,) = [doc for doc in canary if doc["kind"] == "InferenceService"]
        predictor = service["spec"]["predictor"]
        assert predictor["canaryTrafficPercent"] == 10
        assert (projects[serving] / "build" / "k8s" / "serverless.yaml").is_file()
    elif serving == "seldon":
        experiments = [doc["spec"] for doc in canary + shadow if doc["kind"] == "Experiment"]
        assert experiments[0]["candidates"][1] == {"name": "churn-model-challenger", "weight": 10}
        assert experiments[1]["mirror"] == {"name": "churn-model-challenger", "percent": 100}
    else:
        rollouts = [doc["data"]["SERVING_ROLLOUT"] for doc in canary + shadow
                    if doc["metadata"]["name"] == "serving-config"]
        assert rollouts == ["canary", "shadow"]


@pytest.mark.render
@pytest.mark.parametrize("serving", SERVING)
def test_generated_rollout_tests_pass(projects: dict[str, Path], serving: str,
                                      tmp_path: Path) -> None:
    """tests/test_k8s_rollout.py renders the overlays with another percentage (kubectl)."""
    venv = requirements_env(projects[serving] / "deploy" / "k8s" / "requirements.txt")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "--noconftest", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'tmp'}", "tests/test_k8s_rollout.py"],
        cwd=projects[serving], capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout and "SKIPPED" not in result.stdout


def broken(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GOOD_POD = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: ok
      namespace: demo
    spec:
      automountServiceAccountToken: false
      containers:
        - name: app
          image: demo:1.0.0
"""


@pytest.mark.slow
def test_kustomize_check_fails_on_a_missing_resource(projects: dict[str, Path],
                                                     tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = run_validate(projects["kserve"], "--checks", "kustomize", str(overlay))
    assert result.returncode == 1
    assert "FAIL kustomize" in result.stdout and "missing.yaml" in result.stdout


@pytest.mark.slow
def test_yamllint_check_fails_on_a_duplicate_key(projects: dict[str, Path],
                                                 tmp_path: Path) -> None:
    good = broken(tmp_path, "good.yaml", GOOD_POD)
    dup = broken(tmp_path, "dup.yaml", GOOD_POD.replace("      name: ok\n",
                                                         "      name: ok\n      name: again\n"))
    ok = run_validate(projects["kserve"], "--checks", "yamllint", "--manifests", str(good))
    assert ok.returncode == 0, ok.stdout
    result = run_validate(projects["kserve"], "--checks", "yamllint", "--manifests", str(dup))
    assert result.returncode == 1
    assert "duplication of key" in result.stdout and "key-duplicates" in result.stdout


@pytest.mark.slow
def test_schema_check_reports_every_error_of_builtin_objects(projects: dict[str, Path],
                                                             tmp_path: Path) -> None:
    good = broken(tmp_path, "good.yaml", GOOD_POD)
    bad = broken(tmp_path, "bad.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replica: 2
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: web:1.0.0
                  ports:
                    - containerPort: "eighty"
        ---
        apiVersion: example.com/v1
        kind: Widget
        metadata:
          name: unknown-crd
    """)
    ok = run_validate(projects["kserve"], "--checks", "schema", "--manifests", str(good))
    assert ok.returncode == 0, ok.stdout
    result = run_validate(projects["kserve"], "--checks", "schema", "--manifests", str(bad))
    assert result.returncode == 1
    assert "Deployment/web: spec: Additional properties are not allowed ('replica'" in result.stdout
    assert "Deployment/web: spec/template/spec/containers/0/ports/0/containerPort" in result.stdout
    assert "Widget/unknown-crd: no schema" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("serving", "kind", "field", "typo"), [
    ("kserve", "InferenceService", "  predictor:\n", "  predictor:\n    modle: {}\n"),
    ("seldon", "Model", "  storageUri:", "  storageUrl:"),
    ("seldon", "Server", "  serverConfig: mlserver", "  serverConfig: mlserver\n  replica: 1"),
])
def test_crd_schema_catches_typos(projects: dict[str, Path], tmp_path: Path, serving: str,
                                  kind: str, field: str, typo: str) -> None:
    project = projects[serving]
    assert run_validate(project, "--checks", "kustomize").returncode == 0
    rendered = (project / "build" / "k8s" / "dev.yaml").read_text()
    documents = [doc for doc in rendered.split("\n---\n") if f"\nkind: {kind}\n" in f"\n{doc}"]
    assert len(documents) == 1, kind
    original = broken(tmp_path, "original.yaml", documents[0])
    assert field in documents[0]
    typoed = broken(tmp_path, "typo.yaml", documents[0].replace(field, typo, 1))
    ok = run_validate(project, "--checks", "schema", "--manifests", str(original))
    assert ok.returncode == 0, ok.stdout
    result = run_validate(project, "--checks", "schema", "--manifests", str(typoed))
    assert result.returncode == 1, result.stdout
    assert "FAIL schema" in result.stdout and kind in result.stdout
    assert "Additional properties are not allowed" in result.stdout or "required" in result.stdout


@pytest.mark.slow
def test_checkov_check_fails_on_an_insecure_pod(projects: dict[str, Path],
                                                tmp_path: Path) -> None:
    insecure = broken(tmp_path, "insecure.yaml", GOOD_POD + """
          securityContext:
            privileged: true
    """)
    assert yaml.safe_load(insecure.read_text())["spec"]["containers"][0]["securityContext"]
    result = run_validate(projects["kserve"], "--checks", "checkov", "--manifests", str(insecure))
    assert result.returncode == 1
    assert "FAIL checkov" in result.stdout
    assert "CKV_K8S_16" in result.stdout  # privileged container


# ---- Kubeflow Pipelines -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["kserve", "no-tuning"])
def test_kfp_pipeline_compiles_offline_with_the_dvc_dag(projects: dict[str, Path],
                                                        variant: str) -> None:
    project = projects[variant]
    venv = requirements_env(project / "pipelines" / "requirements.txt")
    result = subprocess.run([str(venv / "bin" / "python"), "pipelines/kfp_pipeline.py"],
                            cwd=project, capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    spec = yaml.safe_load((project / "pipelines" / "pipeline.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    upstream = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    expected = {"prepare": set(), "features": {"prepare"}, "evaluate": {"train"},
                "monitor": {"prepare", "evaluate"}}
    if variant == "no-tuning":
        expected["train"] = {"features"}
    else:
        expected |= {"tune": {"features"}, "train": {"features", "tune"}}
    assert upstream == expected
    package = project.name.replace("-", "_")
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(expected)
    for executor in executors.values():
        container = executor["container"]
        assert container["image"].endswith("-pipeline:0.1.0")
        assert f"{package}.pipeline.$stage" in container["command"][2]
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        assert env["MLFLOW_TRACKING_URI"].startswith("http://mlflow.")
