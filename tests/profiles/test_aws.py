"""The aws profile: its CDK app synthesizes and lints clean, broken resources are caught,
and the generated project's own verify runs the data chain against a local moto_server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.envs import requirements_env

JSII_ENV = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def infra_env(requirements: Path) -> Path:
    """A cached venv with infra/requirements.txt (aws-cdk-lib, cfn-lint, checkov)."""
    return requirements_env(requirements, prefix="infra")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_project(load_stack("aws"), tmp_path_factory.mktemp("aws") / "aws-demo")


@pytest.fixture(scope="module")
def synthesized(project: Path) -> tuple[Path, Path]:
    """(infra venv python, cdk.out) after one real offline `app.synth()`."""
    python = infra_env(project / "infra" / "requirements.txt") / "bin" / "python"
    result = subprocess.run([str(python), "app.py"], cwd=project / "infra",
                            env={**os.environ, **JSII_ENV}, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return python, project / "infra" / "cdk.out"


def lint(python: Path, out_dir: Path, lint_py: Path) -> subprocess.CompletedProcess[str]:
    """The generated project's infra/lint.py (cfn-lint + checkov) on ``out_dir``."""
    return subprocess.run([str(python), str(lint_py), str(out_dir)], capture_output=True,
                          text=True, timeout=300, check=False)


def template(out_dir: Path) -> dict[str, Any]:
    (path,) = out_dir.glob("*.template.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_aws_profile_renders_infra_and_drops_it_elsewhere(project: Path, tmp_path: Path) -> None:
    for name in ("infra/app.py", "infra/ml_stack.py", "infra/lint.py", "infra/cdk.json",
                 ".github/workflows/deploy.yml", "src/aws_demo/verify_aws.py",
                 "src/aws_demo/serving/sagemaker.py", "tests/test_sagemaker.py"):
        assert (project / name).is_file(), name
    store = (project / "feature_repo" / "feature_store.yaml").read_text()
    assert "type: dynamodb" in store and "endpoint" not in store.split("online_store")[1]
    dvc_config = (project / ".dvc" / "config").read_text()
    assert "AWS_SECRET" not in dvc_config and "access_key" not in dvc_config
    startup = create_project(load_stack("startup"), tmp_path / "startup")
    assert not (startup / "infra").exists()
    assert not (startup / ".github" / "workflows" / "deploy.yml").exists()
    assert not (startup / "src" / "startup" / "verify_aws.py").exists()


def test_deploy_workflow_uses_oidc_not_keys(project: Path) -> None:
    text = (project / ".github" / "workflows" / "deploy.yml").read_text()
    assert "id-token: write" in text
    assert "role-to-assume" in text
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


@pytest.mark.slow
def test_synth_is_clean_for_cfn_lint_and_checkov(
    project: Path, synthesized: tuple[Path, Path]
) -> None:
    python, out_dir = synthesized
    result = lint(python, out_dir, project / "infra" / "lint.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint clean" in result.stdout and " 0 failed" in result.stdout
    resources = template(out_dir)["Resources"]
    types = [r["Type"] for r in resources.values()]
    for wanted in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::ECR::Repository",
                   "AWS::SageMaker::MlflowTrackingServer", "AWS::SageMaker::Model",
                   "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
                   "AWS::CloudWatch::Alarm", "AWS::KMS::Key"):
        assert wanted in types, wanted
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [
                statement["Action"]]
            assert "*" not in actions, name
            if statement["Resource"] == "*":
                assert actions == ["ecr:GetAuthorizationToken"], (name, actions)


def broken_copy(out_dir: Path, target: Path, mutate: Any) -> Path:
    shutil.copytree(out_dir, target)
    (path,) = target.glob("*.template.json")
    data = json.loads(path.read_text())
    mutate(data["Resources"])
    path.write_text(json.dumps(data))
    return target


@pytest.mark.slow
def test_broken_resources_fail_the_lint(
    project: Path, synthesized: tuple[Path, Path], tmp_path: Path
) -> None:
    python, out_dir = synthesized
    lint_py = project / "infra" / "lint.py"

    def unencrypted_unversioned_bucket(resources: dict[str, Any]) -> None:
        bucket = next(r for k, r in resources.items() if k.startswith("DataBucket")
                      and r["Type"] == "AWS::S3::Bucket")
        for key in ("BucketEncryption", "VersioningConfiguration", "LoggingConfiguration"):
            bucket["Properties"].pop(key)

    def invalid_property(resources: dict[str, Any]) -> None:
        table = next(r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table")
        table["Properties"]["BillingMode"] = "FREE_OF_CHARGE"

    checkov_case = lint(
        python, broken_copy(out_dir, tmp_path / "a", unencrypted_unversioned_bucket), lint_py
    )
    assert checkov_case.returncode == 1
    assert "checkov: CKV_AWS_21" in checkov_case.stdout, checkov_case.stdout
    cfn_case = lint(python, broken_copy(out_dir, tmp_path / "b", invalid_property), lint_py)
    assert cfn_case.returncode == 1
    assert "cfn-lint:" in cfn_case.stdout and "FREE_OF_CHARGE" in cfn_case.stdout, cfn_case.stdout
    garbled = tmp_path / "c"
    shutil.copytree(out_dir, garbled)
    (path,) = garbled.glob("*.template.json")
    path.write_text(path.read_text()[:-200])
    parse_case = lint(python, garbled, lint_py)
    assert parse_case.returncode == 1, parse_case.stdout


@pytest.mark.slow
def test_make_verify_against_moto(project: Path) -> None:
    """`make setup` + `make verify`: moto_server started and stopped, every step real."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="copy")
    setup = subprocess.run(["make", "setup"], cwd=project, env=env, capture_output=True,
                           text=True, timeout=900, check=False)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    result = subprocess.run(["make", "verify"], cwd=project, env=env, capture_output=True,
                            text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    report = json.loads((project / "reports" / "verify.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    for name in ("aws endpoint", "model on s3", "dynamodb", "sagemaker", "reports to s3",
                 "dvc push/pull", "predict ids", "shutdown"):
        assert steps[name]["ok"], steps.get(name)
    assert "started moto_server" in steps["aws endpoint"]["detail"]
    assert "moto stopped" in steps["shutdown"]["detail"]
