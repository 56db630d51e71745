"""The component catalogue: manifests validated with one-line errors, rules applied on load."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from mlops_scaffold.catalogue import catalogue, components_dir, load_catalogue, violations
from mlops_scaffold.errors import CatalogueError, StackError
from mlops_scaffold.resources import template_dir
from mlops_scaffold.stacks import load_stack
from mlops_scaffold.template_sync import exclude_rules


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "components"
    shutil.copytree(components_dir(), root)
    return root


def test_shipped_catalogue_loads_every_component_folder() -> None:
    cat = catalogue()
    folders = {p.parent.relative_to(components_dir()).as_posix()
               for p in components_dir().glob("*/*/component.yml")}
    assert folders == {f"{slot}/{name}" for slot in cat.components for name in cat.components[slot]}
    assert cat.choices("tuning")[-1] == "none"
    assert cat.components["tracking"]["mlflow"].services[0].port_setting == "mlflow_port"
    assert catalogue() is cat  # cached


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("serving/fastapi/component.yml", "description: x\nport: 1\n",
         r"serving/fastapi/component\.yml: port: unknown key$"),
        ("serving/fastapi/component.yml", "services: []\n",
         r"serving/fastapi/component\.yml: description: missing key$"),
        ("serving/fastapi/component.yml", "description: x\nrequires: [{slot: nope, any_of: [a], "
         "why: y}]\n", r"serving/fastapi/component\.yml: requires\.0: unknown slot 'nope'$"),
        ("serving/fastapi/component.yml", "description: x\nrequires: [{slot: deploy, any_of: "
         "[k8s], why: y}]\n", r"requires\.0\.any_of: deploy has no value 'k8s' \(allowed: "),
        ("serving/fastapi/component.yml", "description: x\nrequires: [{slot: deploy, setting: "
         "online_store, any_of: [compose], why: y}]\n",
         r"requires\.0: give exactly one of slot or setting$"),
        ("serving/fastapi/component.yml", "description: [unclosed\n", r"not valid YAML \(line"),
        ("serving/fastapi/component.yml", "description: x\nverify_steps: [{name: n, module: "
         "verify_x, function: step_x, replaces: a, after: b}]\n",
         r"verify_steps\.0: give at most one of replaces, before or after$"),
        ("serving/fastapi/component.yml", "description: x\nverify_steps: [{name: n, module: "
         "verify_x, function: step_x, when: {slot: tunning, any_of: [x], why: y}}]\n",
         r"verify_steps\.0\.when: unknown slot 'tunning'$"),
        ("serving/bento/readme.txt", "x", r"serving/bento/component\.yml: missing"),
        ("nope/thing/component.yml", "description: x\n", r"slot 'nope' is not in .*slots\.yml"),
        ("settings.yml", "validation: {help: h, default: none, values: {none: {}}}\n",
         r"settings\.yml: validation\.values\.none\.description: missing key$"),
        ("settings.yml", "validation: {help: h, default: x, values: {none: {description: d}}}\n",
         r"settings\.yml: validation\.default: 'x' is not one of its values \(none\)$"),
    ],
)
def test_invalid_manifests_give_one_line_naming_file_and_key(
    copy: Path, path: str, text: str, message: str
) -> None:
    target = copy / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(f"{copy}/")
    assert re.search(message, caught.value.message), caught.value.message


def test_a_new_component_folder_is_a_new_allowed_value(copy: Path) -> None:
    folder = copy / "tracking" / "aim"
    folder.mkdir()
    (folder / "component.yml").write_text(
        "description: Aim tracking server\nservices: [{name: aim, port_setting: mlflow_port}]\n",
        encoding="utf-8",
    )
    assert load_catalogue(copy).choices("tracking") == ("aim", "mlflow")


REFUSED = [
    (["serving_platform=kserve"], "profile 'startup' (startup.yaml) with --set "
     "'serving_platform=kserve': serving_platform=kserve requires deploy=kubernetes (have "
     "deploy=compose: the InferenceService runs on a Kubernetes cluster); set "
     "deploy=kubernetes, or serving_platform=compose"),
    (["serving_platform=sagemaker"], "serving_platform=sagemaker requires deploy=aws-cdk"),
    (["deploy=kubernetes"], "serving_platform=compose requires deploy=compose (have "
     "deploy=kubernetes: the compose stack is the platform of deploy=compose; "),
    (["deploy=aws-cdk"], "; set deploy=compose, or serving_platform=sagemaker artifact_store=s3"
     " data_remote=s3"),
    (["orchestration=airflow"], "orchestration=airflow requires tracking_backend=postgresql "
     "(have tracking_backend=sqlite: "),
    (["online_store=dynamodb"], "online_store=dynamodb requires deploy=aws-cdk"),
    (["serving=mlserver", "tracking_backend=postgresql"], "serving=mlserver conflicts with "
     "tracking_backend=postgresql (the enterprise verify steps (API key, MLflow auth) drive "
     "the FastAPI app); set tracking_backend=sqlite"),
    (["serving=tf-serving", "model=torch-mlp"], "serving=tf-serving conflicts with "
     "model=torch-mlp (the exporter writes scikit-learn's linear model as a TensorFlow graph, "
     "not the MLP); set model=sklearn"),
    (["serving=bentoml", "deploy=kubernetes", "serving_platform=kserve"], "serving=bentoml "
     "requires serving_platform=compose (have serving_platform=kserve: "),
    (["serving=triton", "deploy=kubernetes", "serving_platform=seldon"], "serving=triton "
     "requires serving_platform=compose (have serving_platform=seldon: "),
    (["serving=triton", "tracking_backend=postgresql"], "serving=triton conflicts with "
     "tracking_backend=postgresql (the enterprise verify steps (API key, MLflow auth) drive "
     "the FastAPI app); set tracking_backend=sqlite"),
    (["serving=torchserve", "deploy=kubernetes", "serving_platform=kserve"],
     "serving=torchserve requires serving_platform=compose (have serving_platform=kserve: "),
    (["serving=torchserve", "tracking_backend=postgresql"], "serving=torchserve conflicts with "
     "tracking_backend=postgresql (the enterprise verify steps (API key, MLflow auth) drive "
     "the FastAPI app); set tracking_backend=sqlite"),
    (["online_store=redis"], "online_store=redis requires tracking_backend=postgresql"),
    (["serving_platform=sagemaker", "deploy=aws-cdk"],
     "deploy=aws-cdk requires artifact_store=s3 (have artifact_store=local"),
    (["tracking_backend=postgresql"], "tracking_backend=postgresql requires online_store=redis"),
    (["deploy=kubernetes", "serving_platform=kserve", "artifact_store=s3"],
     "artifact_store=s3 requires deploy=compose or deploy=aws-cdk (have deploy=kubernetes: "),
    (["data_remote=s3"], "data_remote=s3 requires artifact_store=s3 (have artifact_store=local: "),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED)
def test_refused_combinations_name_both_sides_and_a_fix(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(StackError) as caught:
        load_stack(profile="startup", overrides=overrides)
    text = caught.value.message
    assert message in text
    assert "\n" not in text and "; set " in text
    fix = text.rsplit("; set ", 1)[1].split(", or ")[0].split()
    fixed = load_stack(profile="startup", overrides=[*overrides, *fix])  # the first fix works
    assert violations(fixed.selection()) == []


def test_enterprise_with_optuna_is_allowed_and_airflow_fix_lists_all_it_needs() -> None:
    load_stack(profile="enterprise", overrides=["tuning=optuna", "validation=none"])
    with pytest.raises(StackError, match=r"; set tracking_backend=postgresql online_store=redis "
                       r"artifact_store=s3, or orchestration=dvc"):
        load_stack(profile="startup", overrides=["orchestration=airflow"])


def test_recorded_answers_are_checked_too() -> None:
    from mlops_scaffold.stacks import stack_from_answers

    answers = load_stack(profile="kubernetes").to_answers()
    expected = (
        r"^\.copier-answers\.yml with --set 'deploy=compose': serving_platform=kserve requires"
    )
    with pytest.raises(StackError, match=expected):
        stack_from_answers(answers, ["deploy=compose"])


def test_contributed_verify_steps_name_functions_of_the_template() -> None:
    """Each ``verify_steps`` entry names a step function its module defines at top level."""
    cat = catalogue()
    package = template_dir() / "project" / "src" / "{{ package_name }}" / "verify"
    steps = [
        step
        for key in cat.all_keys()
        for value in cat.choices(key)
        for step in cat.choice(key, value).verify_steps
    ]
    assert steps
    for step in steps:
        tree = ast.parse((package / f"{step.module}.py").read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert step.function in defined, f"{step.name}: {step.module}.{step.function}"


def test_a_server_of_its_own_traces_requests_or_replaces_the_traces_step() -> None:
    """The core ``traces`` step sends ``X-Request-ID`` and waits for the request's spans:
    a serving application that replaces ``serving ready`` (a server other than the
    FastAPI app) either runs the app's request middleware or replaces ``traces``."""
    cat = catalogue()
    for value in cat.choices("serving"):
        replaced = {step.replaces for step in cat.choice("serving", value).verify_steps}
        if "serving ready" not in replaced or "traces" in replaced:
            continue
        files = (components_dir() / "serving" / value / "files").rglob("*.py")
        assert any("RequestContextMiddleware" in path.read_text(encoding="utf-8")
                   for path in files), f"serving={value}: the traces step would fail"


@pytest.mark.parametrize(
    ("old", "new"),
    [("kserve", "kserve"), ("seldon", "seldon"), ("fastapi-deployment", "deployment")],
)
def test_the_old_serving_values_are_refused_with_their_new_spelling(old: str, new: str) -> None:
    message = (
        f"serving={old} is now serving_platform={new} (serving names the application: fastapi)"
    )
    with pytest.raises(StackError) as caught:
        load_stack(profile="kubernetes", overrides=[f"serving={old}"])
    assert caught.value.message == (
        f"profile 'kubernetes' (kubernetes.yaml) with --set 'serving={old}': {message}"
    )


def test_a_stack_file_with_the_old_serving_spelling_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndescription: d\nextends: kubernetes\nslots: {serving: seldon}\n",
        encoding="utf-8",
    )
    with pytest.raises(StackError, match=r": serving=seldon is now serving_platform=seldon \("):
        load_stack(stack_file=path)


@pytest.mark.parametrize(
    ("serving", "deploy", "platform"),
    [
        ("kserve", "kubernetes", "kserve"),
        ("seldon", "kubernetes", "seldon"),
        ("fastapi-deployment", "kubernetes", "deployment"),
        ("fastapi", "kubernetes", "deployment"),
        ("fastapi", "aws-cdk", "sagemaker"),
        ("fastapi", "compose", "compose"),
    ],
)
def test_recorded_answers_of_an_earlier_release_are_migrated(
    serving: str, deploy: str, platform: str
) -> None:
    from mlops_scaffold.stacks import stack_from_answers

    profile = {"kubernetes": "kubernetes", "aws-cdk": "aws", "compose": "startup"}[deploy]
    answers = load_stack(profile=profile).to_answers()
    del answers["serving_platform"]
    answers["serving"] = serving
    stack = stack_from_answers(answers)
    assert (stack.slots.serving, stack.slots.serving_platform) == ("fastapi", platform)
    with pytest.raises(StackError, match=r"serving=seldon is now serving_platform=seldon"):
        stack_from_answers(answers, ["serving=seldon"])


def _contributions(profile: str, overrides: list[str], question: str) -> object:
    """The hidden question ``question`` of copier.yml, computed for a stack's answers."""
    import jinja2
    import yaml

    config = yaml.safe_load((template_dir() / "copier.yml").read_text(encoding="utf-8"))
    answers = load_stack(profile=profile, overrides=overrides).to_answers()
    rendered = jinja2.Environment().from_string(config[question]["default"]).render(answers)
    return yaml.safe_load(rendered)


def test_a_value_another_choice_provides_contributes_only_its_packages() -> None:
    """artifact_store=s3 and data_remote=s3 bring MinIO, their modules and verify steps on
    compose; on aws-cdk the CDK app's buckets stand for them: their packages only."""
    startup_s3 = ["artifact_store=s3", "data_remote=s3"]
    steps = {s["name"] for s in _contributions("startup", startup_s3, "verify_steps")}  # type: ignore[attr-defined]
    assert {"s3 bucket", "artifacts on s3", "dvc remote"} <= steps
    aws_steps = {s["name"] for s in _contributions("aws", [], "verify_steps")}  # type: ignore[attr-defined]
    assert not {"s3 bucket", "artifacts on s3", "dvc remote"} & aws_steps
    paths = [f["path"] for f in _contributions("aws", [], "fragments")]  # type: ignore[attr-defined]
    assert not [path for path in paths if "/artifact_store/" in path or "/data_remote/" in path]
    assert "AWS_SECRET_ACCESS_KEY" not in _contributions("aws", [], "env_secrets")  # type: ignore[operator]
    packages = {p["requirement"] for p in _contributions("aws", [], "packages")}  # type: ignore[attr-defined]
    assert {"boto3==1.43.117", "dvc[s3]==3.67.1"} <= packages
    rules = [rule for rule in exclude_rules(catalogue()) if rule.endswith("/s3.py{% endif %}")]
    assert rules == [
        "{% if artifact_store != 's3' or deploy in [\"aws-cdk\"] %}"
        f"src/{{{{ package_name }}}}/{role}/s3.py{{% endif %}}"
        for role in ("platform", "verify")
    ]
