"""Export the registry's champion as a TensorFlow Serving model (``serving=tf-serving``).

``python -m <package>.serving.tf_export --out build/tf-serving`` resolves the ``champion``
alias, reads the fitted scikit-learn pipeline's parameters (imputation values, scaler
means and scales, one-hot categories, the linear model's coefficients) into a JSON spec,
and has ``tf_serving_model.py build`` (project root) turn them into a float64 TensorFlow
graph in the TensorFlow environment, ``.venv-tf-serving``: the SavedModel
``<out>/<model>/<version>/`` (``saved_model.pb`` + ``variables/``), ``models.config`` and
``monitoring.config`` for ``tensorflow_model_server``. The graph computes the champion's
own scores (``make verify`` compares them within 1e-9); a model the exporter cannot write
as that graph (not the linear pipeline of ``pipeline/train.py``) is refused in one line,
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MODEL_ALIAS, load_settings
from ..schema import CATEGORICAL_FEATURES, LABEL_CLASSES, NUMERIC_FEATURES, TASK
from . import outputs

ENVIRONMENT = ".venv-tf-serving"
BUILDER = "tf_serving_model.py"
EXIT_UNSUPPORTED = 2
"""Exit code of a champion the exporter cannot write as a TensorFlow graph."""
DEFAULT_THRESHOLD = 0.5
"""P(class 1) at or above which the binary ``label`` output is true (``CHURN_THRESHOLD``)."""
_TF_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


class UnsupportedModel(ValueError):
    """The champion is not the linear pipeline the exporter writes as a TensorFlow graph."""


def _steps(model: Any) -> tuple[list[Any], Any, Any]:
    """(numeric preprocessing steps, categorical pipeline or None, final estimator)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        raise UnsupportedModel(f"the champion is a {type(model).__name__}, not a Pipeline")
    *prepare, (_, estimator) = model.steps
    first = prepare[0][1] if len(prepare) == 1 else None
    if isinstance(first, ColumnTransformer):
        parts = {name: (step, list(cols)) for name, step, cols in first.transformers_}
        numeric, numeric_columns = parts.get("numeric", (None, []))
        categorical, categorical_columns = parts.get("categorical", (None, []))
        if numeric_columns != NUMERIC_FEATURES or categorical_columns != CATEGORICAL_FEATURES:
            raise UnsupportedModel("its ColumnTransformer does not split schema.py's columns")
        return list(numeric.steps), categorical, estimator
    return [step for _, step in prepare], None, estimator


def _numeric_spec(steps: list[Any]) -> list[dict[str, Any]]:
    """Per numeric feature: its imputed value (median, or None) and its scaler's mean/scale."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    steps = [step[1] if isinstance(step, tuple) else step for step in steps]
    imputer = next((s for s in steps if isinstance(s, SimpleImputer)), None)
    scaler = next((s for s in steps if isinstance(s, StandardScaler)), None)
    if scaler is None or len(steps) != (2 if imputer is not None else 1):
        raise UnsupportedModel("its numeric steps are not [median imputation,] scaling")
    fills = imputer.statistics_ if imputer is not None else [None] * len(NUMERIC_FEATURES)
    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(len(NUMERIC_FEATURES))
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(len(NUMERIC_FEATURES))
    return [
        {"name": name, "fill": None if fill is None else float(fill), "mean": float(m),
         "scale": float(s)}
        for name, fill, m, s in zip(NUMERIC_FEATURES, fills, mean, scale, strict=True)
    ]  # fmt: skip


def _categorical_spec(pipeline: Any) -> list[dict[str, Any]]:
    """Per categorical feature: its most frequent category and its one-hot categories."""
    if pipeline is None:
        return []
    impute, onehot = (step for _, step in pipeline.steps)
    if getattr(onehot, "drop_idx_", None) is not None or onehot.handle_unknown != "ignore":
        raise UnsupportedModel("its one-hot encoder drops a category or refuses unknown ones")
    return [
        {"name": name, "fill": str(fill), "categories": [str(c) for c in categories]}
        for name, fill, categories in zip(
            CATEGORICAL_FEATURES, impute.statistics_, onehot.categories_, strict=True
        )
    ]


def linear_spec(model: Any) -> dict[str, Any]:
    """The fitted parameters of the champion pipeline, as ``tf_serving_model.py`` reads them.

    Raises :class:`UnsupportedModel` for anything but the pipeline of
    ``pipeline/train.py`` with scikit-learn's linear model (logistic regression for binary
    and multiclass, ridge for regression).
    """
    from sklearn.linear_model import LogisticRegression, Ridge

    numeric_steps, categorical, estimator = _steps(model)
    expected = Ridge if TASK == "regression" else LogisticRegression
    if not isinstance(estimator, expected):
        raise UnsupportedModel(
            f"its model is a {type(estimator).__name__}; the exporter writes {expected.__name__}"
        )
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    if TASK == "multiclass" and coef.shape[0] != len(LABEL_CLASSES):
        raise UnsupportedModel(f"{coef.shape[0]} coefficient rows for {len(LABEL_CLASSES)} classes")
    numeric = _numeric_spec(numeric_steps) if NUMERIC_FEATURES else []
    categories = _categorical_spec(categorical)
    width = len(numeric) + sum(len(c["categories"]) for c in categories)
    if coef.shape[1] != width:
        raise UnsupportedModel(f"{coef.shape[1]} coefficients for {width} prepared columns")
    bad_names = [c["name"] for c in [*numeric, *categories] if not _TF_NAME.match(c["name"])]
    if bad_names:
        raise UnsupportedModel(f"feature names {bad_names} are not TensorFlow input names")
    return {
        "task": TASK,
        "numeric": numeric,
        "categorical": categories,
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
        "classes": list(LABEL_CLASSES) if TASK == "multiclass" else [],
        "outputs": {"score": outputs.SCORE_FIELD, "label": outputs.LABEL_FIELD},
        "threshold": float(os.environ.get("CHURN_THRESHOLD") or DEFAULT_THRESHOLD),
    }


def tf_python(root: Path) -> Path:
    """The TensorFlow environment's interpreter; SystemExit (one line) when it is missing."""
    python = root / ENVIRONMENT / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"error: {python} is missing: run 'make setup' (it builds {ENVIRONMENT})")
    return python


def tf_env() -> dict[str, str]:
    """The environment of TensorFlow children: quiet C++ logs, no oneDNN notice, offline."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def export(
    root: Path, model: Any, model_name: str, version: str, out: Path, model_base: str
) -> Path:
    """Write the champion's spec, then build its SavedModel and configs under ``out``."""
    spec = {**linear_spec(model), "model_name": model_name, "version": int(version)}
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    command = [str(tf_python(root)), str(root / BUILDER), "build", str(spec_path), str(out),
               "--model-base", model_base]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=tf_env(), check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{BUILDER} build failed (exit {done.returncode}): {last}")
    return out / model_name / str(int(version))


def main(argv: list[str] | None = None) -> None:
    """Resolve ``<model>@champion`` in MLflow and export it under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/tf-serving"))
    parser.add_argument(
        "--model-base",
        default="/models",
        help="the directory TF Serving sees --out as (models.config's base_path)",
    )
    args = parser.parse_args(argv)
    import mlflow.sklearn
    from mlflow import MlflowClient

    settings = load_settings()
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    version = str(client.get_model_version_by_alias(settings.model_name, MODEL_ALIAS).version)
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    try:
        path = export(
            settings.paths.root, model, settings.model_name, version, args.out, args.model_base
        )
    except UnsupportedModel as exc:
        print(f"error: {settings.model_name} v{version} cannot be exported: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNSUPPORTED) from None
    print(f"{path}: {settings.model_name} v{version} ({TASK}); {args.out / 'models.config'}")


if __name__ == "__main__":
    main()
