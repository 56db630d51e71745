"""MLflow set-up shared by every stage: tracking URI, experiment, registry helpers.

MLflow is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ..config import EXPERIMENT_NAME, MODEL_ALIAS, Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# Distributions a logged model needs to be loaded again, pinned to the running versions.
MODEL_REQUIREMENTS: tuple[str, ...] = (
    "mlflow",
    "cloudpickle",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
)


def _quiet_known_noise() -> None:
    """Silence MLflow messages that are expected here and only clutter stage output."""
    # SQLAlchemy 2 deprecation raised by MLflow's own SQL store.
    warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")
    # Integer features can't hold NaN: the serving app checks rows are complete first.
    warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column")
    # uv-made environments have no pip; the logged requirements are pinned explicitly.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)


def configure_tracking(settings: Settings, experiment: str = EXPERIMENT_NAME) -> str:
    """Point MLflow at the project's tracking store and activate ``experiment``.

    The experiment is created with ``settings.artifact_location`` (an absolute file URI by
    default): with a ``sqlite:///`` tracking URI MLflow would otherwise put artifacts in
    ``./mlruns`` relative to whatever the current directory is. Returns the experiment id.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _quiet_known_noise()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            experiment_id = client.create_experiment(
                experiment, artifact_location=settings.artifact_location
            )
        except MlflowException:
            # Created meanwhile by another process.
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
            experiment_id = found.experiment_id
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def normalise_version(value: int | str) -> int:
    """A model version as an int (``ModelVersion.version`` is an int or a str by release)."""
    return int(str(value))


def champion(client: MlflowClient, model_name: str) -> ModelVersion | None:
    """The version carrying the ``champion`` alias, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, MODEL_ALIAS)
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def model_requirements() -> list[str]:
    """Exact pins (``name==version``) of what a logged model needs, from this environment.

    Passing them to ``log_model`` skips MLflow's requirement inference (6-8 s per model).
    """
    pins = []
    for dist in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return pins
