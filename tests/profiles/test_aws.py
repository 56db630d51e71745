"""The aws profile: its CDK app synthesizes two stacks (base, serving) that lint clean,
broken resources are caught, `make deploy` runs base -> image push -> serving, and the
generated project's own verify runs the data chain against a local moto_server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from tests.envs import cached_env, content_key, project_env, requirements_env

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


def template(out_dir: Path, stack: str) -> dict[str, Any]:
    """The synthesized template of ``<project>-<stack>`` (base or serving)."""
    (path,) = out_dir.glob(f"*-{stack}.template.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_aws_profile_renders_infra_and_drops_it_elsewhere(project: Path, tmp_path: Path) -> None:
    for name in ("infra/app.py", "infra/ml_stack.py", "infra/lint.py", "infra/cdk.json",
                 ".github/workflows/deploy.yml", "src/aws_demo/verify/aws.py",
                 "src/aws_demo/serving/sagemaker.py", "tests/test_sagemaker.py"):
        assert (project / name).is_file(), name
    store = (project / "feature_repo" / "feature_store.yaml").read_text()
    assert "type: dynamodb" in store and "endpoint" not in store.split("online_store")[1]
    dvc_config = (project / ".dvc" / "config").read_text()
    assert "AWS_SECRET" not in dvc_config and "access_key" not in dvc_config
    startup = create_project(load_stack("startup"), tmp_path / "startup")
    assert not (startup / "infra").exists()
    assert not (startup / ".github" / "workflows" / "deploy.yml").exists()
    assert not (startup / "src" / "startup" / "verify" / "aws.py").exists()


def test_deploy_workflow_uses_oidc_not_keys(project: Path) -> None:
    text = (project / ".github" / "workflows" / "deploy.yml").read_text()
    assert "id-token: write" in text
    assert "role-to-assume" in text
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "make deploy IMAGE_TAG=" in text


@pytest.mark.slow
def test_synth_is_clean_for_cfn_lint_and_checkov(
    project: Path, synthesized: tuple[Path, Path]
) -> None:
    python, out_dir = synthesized
    result = lint(python, out_dir, project / "infra" / "lint.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint clean" in result.stdout and " 0 failed" in result.stdout
    assert "aws-demo-base.template.json, aws-demo-serving.template.json" in result.stdout
    base, serving = template(out_dir, "base"), template(out_dir, "serving")
    base_types = {r["Type"] for r in base["Resources"].values()}
    serving_types = {r["Type"] for r in serving["Resources"].values()}
    # What must exist before the image is pushed is in base; what needs the image, in serving.
    for wanted in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::ECR::Repository",
                   "AWS::SageMaker::MlflowTrackingServer", "AWS::KMS::Key", "AWS::IAM::Role"):
        assert wanted in base_types and wanted not in serving_types, wanted
    for wanted in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig",
                   "AWS::SageMaker::Endpoint", "AWS::CloudWatch::Alarm"):
        assert wanted in serving_types and wanted not in base_types, wanted
    # Feast's DynamoDB table: <package>.<the data contract's FEATURE_VIEW> (cdk.json)
    (table,) = [r for r in base["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert table["Properties"]["TableName"] == "aws_demo.customer_features"
    (model,) = [r for r in serving["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    container = model["Properties"]["PrimaryContainer"]
    image = json.dumps(container["Image"])
    assert "Fn::ImportValue" in image and image.endswith(':latest"]]}'), image
    assert "Fn::ImportValue" in json.dumps(container["Environment"]["S3_DATA_BUCKET"])
    resources = {**base["Resources"], **serving["Resources"]}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [
                statement["Action"]]
            assert "*" not in actions, name
            if statement["Resource"] == "*":
                assert actions == ["ecr:GetAuthorizationToken"], (name, actions)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_rollout_settings_add_the_challenger_variant(
    project: Path, synthesized: tuple[Path, Path], tmp_path: Path, mode: str
) -> None:
    """SERVING_ROLLOUT / SERVING_CANARY_PERCENT (the app's settings) shape the endpoint."""
    python, _ = synthesized
    out_dir = tmp_path / "cdk.out"
    result = subprocess.run(
        [str(python), "app.py"], cwd=project / "infra", capture_output=True, text=True,
        timeout=300, check=False,
        env={**os.environ, **JSII_ENV, "CDK_OUTDIR": str(out_dir),
             "SERVING_ROLLOUT": mode, "SERVING_CANARY_PERCENT": "25"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    linted = lint(python, out_dir, project / "infra" / "lint.py")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    resources = template(out_dir, "serving")["Resources"]
    (config,) = [r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::SageMaker::EndpointConfig"]  # fmt: skip
    models = {name: r["Properties"]["PrimaryContainer"]["Environment"]
              for name, r in resources.items() if r["Type"] == "AWS::SageMaker::Model"}  # fmt: skip

    def variants(key: str) -> dict[str, tuple[float, str]]:
        return {v["VariantName"]: (v["InitialVariantWeight"], v["ModelName"]["Fn::GetAtt"][0])
                for v in config.get(key, [])}  # fmt: skip

    production, shadow = variants("ProductionVariants"), variants("ShadowProductionVariants")
    if mode == "canary":
        assert production == {"champion": (75, "ServingModel"),
                              "challenger": (25, "ChallengerModel")}
        assert shadow == {}
    else:
        assert production == {"champion": (1, "ServingModel")}
        assert shadow == {"challenger": (1, "ChallengerModel")}
    assert models["ChallengerModel"]["SERVING_MODEL_ALIAS"] == "challenger"
    assert "SERVING_MODEL_ALIAS" not in models["ServingModel"]


def broken_copy(out_dir: Path, target: Path, mutate: Any) -> Path:
    shutil.copytree(out_dir, target)
    (path,) = target.glob("*-base.template.json")
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
    (path,) = garbled.glob("*-serving.template.json")
    path.write_text(path.read_text()[:-200])
    parse_case = lint(python, garbled, lint_py)
    assert parse_case.returncode == 1, parse_case.stdout


FAKE_CLI = textwrap.dedent("""\
    #!/bin/bash
    # Records the call; answers like the real CLI where make deploy reads an answer.
    echo "$(basename "$0") $* tag=${CDK_CONTEXT_IMAGE_TAG:-}" >> "$CALLS"
    prev=""
    for arg in "$@"; do
        if [ "$prev" = "--outputs-file" ]; then
            echo '{"aws-demo-base": {"RepositoryUri": "%s"}}' > "$arg"
        fi
        prev="$arg"
    done
    case "$*" in
        *describe-images*) [ -n "${IMAGE_EXISTS:-}" ] || exit 254 ;;
        *get-login-password*) echo token ;;
        # Like the real CLI, read the piped password: exiting first would kill the writer
        # with SIGPIPE (make's pipefail then fails the recipe, 141, depending on timing).
        *--password-stdin*) cat > /dev/null ;;
    esac
""")


@pytest.mark.slow
def test_make_deploy_runs_base_then_image_then_serving(
    project: Path, synthesized: tuple[Path, Path], tmp_path: Path
) -> None:
    """`make deploy` with recording cdk/docker/aws stand-ins: order, tag and ECR reuse."""
    python, _ = synthesized
    repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aws-demo-serving"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("cdk", "docker", "aws"):
        (fake_bin / tool).write_text(FAKE_CLI % repo)
        (fake_bin / tool).chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, **JSII_ENV, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
           "CALLS": str(calls)}
    make = ["make", "deploy", f"INFRA_VENV={python.parent.parent}"]

    def deploy(**extra: str) -> list[str]:
        calls.unlink(missing_ok=True)
        result = subprocess.run([*make, *(f"{k}={v}" for k, v in extra.items())],
                                cwd=project, env=env, capture_output=True, text=True,
                                timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        return [line for line in calls.read_text().splitlines()
                if not line.startswith("docker compose")]

    first = deploy(IMAGE_TAG="v1")
    assert re.match(r"cdk deploy .*--exclusively --outputs-file \S+ aws-demo-base tag=$",
                    first[0]), first
    assert first[1].startswith("aws ecr describe-images --region eu-west-1 "
                               "--repository-name aws-demo-serving --image-ids imageTag=v1")
    assert f"docker build -f docker/serving.Dockerfile -t {repo}:v1 . tag=" in first
    assert f"docker push {repo}:v1 tag=" in first
    assert re.match(r"cdk deploy .*--exclusively aws-demo-serving tag=v1$", first[-1]), first
    assert first.index(f"docker push {repo}:v1 tag=") < len(first) - 1
    env["IMAGE_EXISTS"] = "1"
    again = deploy(IMAGE_TAG="v1")
    assert not [line for line in again if line.startswith("docker")], again
    assert again[-1].endswith("aws-demo-serving tag=v1")
    # No tag and a modified tracked file: refused before anything is deployed.
    params = project / "params.yaml"
    original = params.read_text()
    params.write_text(original + "\n")
    try:
        calls.unlink(missing_ok=True)
        refused = subprocess.run(make, cwd=project, env=env, capture_output=True, text=True,
                                 timeout=120, check=False)
    finally:
        params.write_text(original)
    assert refused.returncode != 0 and "uncommitted changes" in refused.stderr
    assert not calls.exists() or "cdk" not in calls.read_text()


def moto_env(project: Path) -> Path:
    """A cached venv with the moto[server] pin of the project's Makefile (.venv-moto's)."""
    pin = re.search(r"'(moto\[server\]==[0-9.]+)'", (project / "Makefile").read_text())
    assert pin, "no moto[server] pin in the Makefile"
    return cached_env(f"moto-{content_key(pin.group(1))}", [pin.group(1)])


@pytest.mark.slow
def test_generated_tests_pass_with_feast_on_moto(project: Path) -> None:
    """The project's own ruff, and its Feast test (S3 registry + table, DynamoDB) on moto."""
    venv, moto = project_env(project), moto_env(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "S3_"))}
    env.update(PYTHONPATH=str(project / "src"), MOTO_SERVER=str(moto / "bin" / "moto_server"),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    lint = subprocess.run([str(venv / "bin" / "ruff"), "check", "."], cwd=project,
                          capture_output=True, text=True, env=env, check=False)
    assert lint.returncode == 0, lint.stdout
    tests = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-p",
                            "no:cacheprovider", "-rA", "tests/test_features.py"], cwd=project,
                           capture_output=True, text=True, env=env, timeout=900, check=False)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "PASSED tests/test_features.py::test_feast_round_trip" in tests.stdout


@pytest.mark.slow
def test_make_verify_against_moto(project: Path) -> None:
    """`make verify`: moto_server started and stopped, every step real.

    `make setup` is replaced by environments cached across runs (tests/envs.py), built
    with uv from the same pins: the project's dependencies + dev extra (VENV, with src/ on
    PYTHONPATH instead of the editable install) and the Makefile's moto[server] pin
    (MOTO_VENV). Building them per run spent minutes compiling bytecode of the same
    wheels; `make setup` itself is what the e2e tests and the README's commands run.
    """
    venv, moto = project_env(project), moto_env(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "S3_"))}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="copy",
               PYTHONPATH=str(project / "src"))
    result = subprocess.run(["make", "verify", f"VENV={venv}", f"MOTO_VENV={moto}"],
                            cwd=project, env=env, capture_output=True, text=True,
                            timeout=1200, check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    report = json.loads((project / "reports" / "verify.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    for name in ("aws endpoint", "model on s3", "feast on s3", "dynamodb", "sagemaker",
                 "reports to s3", "dvc push/pull", "predict ids", "shutdown"):
        assert steps[name]["ok"], steps.get(name)
    assert "started moto_server" in steps["aws endpoint"]["detail"]
    assert "offline source s3://aws-demo-data/feast/" in steps["feast on s3"]["detail"]
    assert "moto stopped" in steps["shutdown"]["detail"]
