"""The slot registry: every slot of a stack, the components allowed in it, and what each brings.

This is the one list of allowed values. A new component is a new entry here, a
conditional block in the template, and a test row; nothing else in the core changes.
The Copier questions in ``templates/copier.yml`` offer exactly these choices (a test
keeps the two in agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Service:
    """A long-running process a component adds to the stack."""

    name: str
    port_setting: str | None = None


@dataclass(frozen=True)
class Component:
    """One allowed value of a slot."""

    description: str
    services: tuple[Service, ...] = field(default_factory=tuple)


SLOTS: dict[str, dict[str, Component]] = {
    "tracking": {
        "mlflow": Component(
            "MLflow tracking server and model registry (champion alias)",
            (Service("mlflow", "mlflow_port"),),
        ),
    },
    "data_versioning": {
        "dvc": Component("DVC pipeline and data versioning with a local remote"),
    },
    "feature_store": {
        "feast": Component("Feast feature repository: offline parquet source, online store"),
    },
    "monitoring": {
        "evidently": Component(
            "Evidently drift reports; Prometheus scrapes the serving metrics",
            (Service("prometheus", "prometheus_port"),),
        ),
        "evidently-grafana": Component(
            "Evidently drift exported as Prometheus metrics; Prometheus scrapes serving and"
            " MLflow; Grafana provisioned with a dashboard",
            (Service("prometheus", "prometheus_port"), Service("grafana", "grafana_port")),
        ),
    },
    "serving": {
        "fastapi": Component(
            "FastAPI + uvicorn serving the champion model, with Prometheus metrics",
            (Service("serving", "serving_port"),),
        ),
        "kserve": Component(
            "KServe InferenceService running the project's FastAPI image as a custom predictor"
            " (V2 protocol); the same app serves locally",
            (Service("serving", "serving_port"),),
        ),
        "seldon": Component(
            "Seldon Core v2 Model on an MLServer Server (V2 protocol); the FastAPI app serves"
            " locally",
            (Service("serving", "serving_port"),),
        ),
        "fastapi-deployment": Component(
            "The FastAPI app as a plain Kubernetes Deployment + Service + HPA + PDB",
            (Service("serving", "serving_port"),),
        ),
    },
    "orchestration": {
        "dvc": Component("Stages run by `dvc repro` (prepare, features, train, evaluate, monitor)"),
        "kubeflow": Component(
            "Kubeflow Pipelines v2 pipeline of the same stages (kfp SDK, compiled offline);"
            " `dvc repro` runs them locally"
        ),
        "airflow": Component(
            "An Airflow DAG runs the DVC stages with retries and a deadline alert",
            (Service("airflow", "airflow_port"),),
        ),
    },
    "tuning": {
        "optuna": Component("Optuna hyper-parameter search stage, trials logged to MLflow"),
        "ray-tune": Component("Ray Tune search (local Ray, OptunaSearch), trials logged to MLflow"),
        "none": Component("No tuning stage"),
    },
    "deploy": {
        "compose": Component("docker-compose stack with healthchecks, ports on 127.0.0.1"),
        "kubernetes": Component(
            "Kustomize manifests (deploy/k8s: base + dev/prod overlays), validated offline;"
            " compose kept for local use"
        ),
        "aws-cdk": Component(
            "AWS CDK app (infra/): S3, DynamoDB, ECR, SageMaker MLflow + endpoint, alarms"
        ),
    },
    "ci": {
        "github-actions": Component("GitHub Actions workflow: lint, tests, verify"),
        "none": Component("No CI workflow"),
    },
}

# Settings with a closed set of values; the other settings are typed in stacks.py.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "python_version": ("3.11",),
    "tracking_backend": ("sqlite", "postgresql"),
    "online_store": ("sqlite", "dynamodb", "redis"),
    "artifact_store": ("local", "s3"),
    "data_remote": ("local", "s3"),
    "validation": ("none", "great-expectations"),
}


def allowed_values(slot: str) -> list[str]:
    """Return the allowed component names of ``slot`` in registry order."""
    return list(SLOTS[slot])
