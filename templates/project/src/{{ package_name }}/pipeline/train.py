"""Stage `train`: fit the model on point-in-time features and register it in MLflow.

The training set is the labels file joined point-in-time onto the Feast offline store.
The newest ``train.test_size`` share of snapshots is held out (out-of-time validation);
the holdout is written to ``data/holdout.parquet`` so `evaluate` scores the candidate and
the champion on exactly the same rows. The model takes raw rows: median imputation and
scaling of the numbers, most-frequent imputation and one-hot encoding of the categories
(``schema.CATEGORICAL_FEATURES``), then a logistic regression (binary, multiclass) or a
ridge regression (regression). Its metrics follow ``schema.TASK``: ROC AUC, average
precision, log loss and Brier score (binary); macro F1, accuracy and log loss
(multiclass); RMSE, MAE and R² (regression). It is logged with its signature and exact
requirements and registered as a new version of ``model.name``; `evaluate` decides
whether it becomes the ``champion``.
"""

from __future__ import annotations

import json
import shutil
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import Settings, load_settings
from ..schema import (
    CATEGORICAL_FEATURES,
    ENTITY_COLUMN,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    NULLABLE_FEATURES,
    NUMERIC_FEATURES,
    TASK,
    TIMESTAMP_COLUMN,
)
from ..telemetry import stage_entry
from .metrics import (
    TASK_METRICS,
    holdout_metrics,
    predictions,
    require_every_class,
    score,
)
from .skops_types import trusted_types

if TYPE_CHECKING:
    from feast import FeatureStore
    from sklearn.pipeline import Pipeline

# Keys of params.yaml's `train` section that are hyper-parameters of the model.
MODEL_PARAM_KEYS = ("C", "class_weight", "max_iter")


def load_training_frame(settings: Settings, store: FeatureStore | None = None) -> pd.DataFrame:
    """Labels joined point-in-time with their features from Feast.

    Rows the join found no features for are dropped, as are rows missing a feature the
    contract says always has a value; the model pipeline imputes NULLABLE_FEATURES.
    """
    from ..platform.feature_store import historical_features, open_store

    labels = pd.read_parquet(settings.paths.labels)
    frame = historical_features(store or open_store(settings), labels)
    found = frame[FEATURE_COLUMNS].notna().any(axis=1)
    required = [name for name in FEATURE_COLUMNS if name not in NULLABLE_FEATURES]
    return frame[found].dropna(subset=required).reset_index(drop=True)


def split_holdout(frame: pd.DataFrame, test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-time split: the newest ``test_size`` share of snapshots is the holdout."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    ordered = frame.sort_values([TIMESTAMP_COLUMN, ENTITY_COLUMN], kind="stable")
    n_holdout = max(1, round(len(ordered) * test_size))
    train, holdout = ordered.iloc[:-n_holdout], ordered.iloc[-n_holdout:]
    require_every_class(train)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def model_params(settings: Settings) -> dict[str, Any]:
    """Model hyper-parameters: params.yaml's `train` section, overridden by tuning results."""
    section = settings.params.get("train", {})
    params = {key: section[key] for key in MODEL_PARAM_KEYS if key in section}
    if "tune" in settings.params and settings.paths.best_params.is_file():
        tuned = json.loads(settings.paths.best_params.read_text(encoding="utf-8"))
        params.update(tuned["params"])
    return params


def build_pipeline(params: dict[str, Any]) -> Pipeline:
    """Preprocessing + the model of TASK with ``params`` (C, class_weight, max_iter).

    The model is the linear one, or the PyTorch MLP of ``pipeline/model_torch.py`` where
    the project has that file (``model=torch-mlp``): same preprocessing, same parameters.

    Numbers: median imputation (when the contract lets one hold no value:
    ``schema.NULLABLE_FEATURES``), then scaling. Categories (if any): most-frequent
    imputation, then one-hot encoding (unknown categories score as all-zero), both in a
    ColumnTransformer. Without categories nor missing values the steps stay a flat
    pipeline of numbers, which the ONNX fast path converts (ONNX Runtime has no float64
    Imputer: the serving app falls back to sklearn for the others).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model: Any
    if find_spec(f"{__package__}.model_torch") is not None:  # model=torch-mlp's own file
        from .model_torch import build_estimator

        model = build_estimator(params)
    elif TASK == "regression":
        model = Ridge(alpha=1.0 / float(params.get("C", 1.0)))
    else:
        model = LogisticRegression(
            C=float(params.get("C", 1.0)),
            class_weight=params.get("class_weight"),
            max_iter=int(params.get("max_iter", 1000)),
        )
    numeric: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if set(NUMERIC_FEATURES) & set(NULLABLE_FEATURES):
        numeric.insert(0, ("impute", SimpleImputer(strategy="median")))
    if not CATEGORICAL_FEATURES:
        return Pipeline([*numeric, ("model", model)])
    categorical = Pipeline(
        [
            # Categories arrive as pandas' string dtype (schema.FEATURE_DTYPES), missing as
            # pd.NA; this imputer also takes None and NaN (request rows, object columns).
            ("impute", SimpleImputer(missing_values=pd.NA, strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prepare = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric), NUMERIC_FEATURES),
            ("categorical", categorical, CATEGORICAL_FEATURES),
        ]
    )
    return Pipeline([("prepare", prepare), ("model", model)])




def fit_and_log(
    settings: Settings,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Fit on ``train``, score ``holdout``, log and register the model; return the report.

    Also saves a local copy of the model (MLflow format) to ``models/model``.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from ..platform.trackers import publish_run, run_tags
    from ..platform.tracking import configure_tracking, model_requirements, normalise_version

    metric = str(settings.params.get("evaluate", {}).get("metric", TASK_METRICS[TASK][0]))
    x_train, y_train = train[FEATURE_COLUMNS], train[LABEL_COLUMN]
    x_holdout, y_holdout = holdout[FEATURE_COLUMNS], holdout[LABEL_COLUMN]
    pipeline = build_pipeline(params).fit(x_train, y_train)
    predicted = predictions(pipeline, x_holdout)
    metrics = {f"holdout_{k}": v for k, v in holdout_metrics(y_holdout, predicted).items()}
    first = TASK_METRICS[TASK][0]
    metrics[f"train_{first}"] = score(first, y_train, predictions(pipeline, x_train))

    configure_tracking(settings)
    example = x_train.head(5)
    predict_fn = "predict" if TASK == "regression" else "predict_proba"
    signature = infer_signature(example, getattr(pipeline, predict_fn)(example))
    requirements = model_requirements()
    with mlflow.start_run(run_name="train") as run:
        mlflow.set_tags(run_tags(settings))
        mlflow.log_params({**params, "test_size": settings.params["train"]["test_size"]})
        mlflow.log_params(
            {
                "n_train": len(train),
                "n_holdout": len(holdout),
                "train_label_mean": round(float(y_train.mean()), 4),
                "tuned": settings.paths.best_params.is_file() and "tune" in settings.params,
            }
        )
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=settings.model_name,
            pyfunc_predict_fn=predict_fn,
            skops_trusted_types=trusted_types(pipeline),
        )
    if info.registered_model_version is None:
        raise RuntimeError(f"model of run {run.info.run_id} was not registered")
    version = normalise_version(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(
        settings.model_name,
        str(version),
        f"holdout_{metric}",
        f"{metrics[f'holdout_{metric}']:.6f}",
    )

    model_dir = settings.paths.model_dir
    shutil.rmtree(model_dir, ignore_errors=True)
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=signature,
        input_example=example,
        pip_requirements=requirements,
        pyfunc_predict_fn=predict_fn,
        skops_trusted_types=trusted_types(pipeline),
    )
    publish_run(settings, run.info.run_id, {"model": model_dir})
    return {
        "run_id": run.info.run_id,
        "model_name": settings.model_name,
        "model_version": version,
        "model_uri": f"models:/{settings.model_name}/{version}",
        "metric": metric,
        "params": params,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "holdout_start": holdout[TIMESTAMP_COLUMN].min().isoformat(),
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
    }


def run(settings: Settings, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """The whole stage: join features, split, fit, register; write holdout and report."""
    frame = load_training_frame(settings) if frame is None else frame
    train, holdout = split_holdout(frame, float(settings.params["train"]["test_size"]))
    report = fit_and_log(settings, train, holdout, model_params(settings))
    settings.paths.holdout.parent.mkdir(parents=True, exist_ok=True)
    holdout.to_parquet(settings.paths.holdout, index=False)
    settings.paths.train_report.parent.mkdir(parents=True, exist_ok=True)
    settings.paths.train_report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


@stage_entry("train")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.train``."""
    report = run(load_settings())
    metric = report["metric"]
    print(
        f"train: {report['model_name']} v{report['model_version']} on {report['n_train']} rows, "
        f"holdout {metric} {report['metrics'][f'holdout_{metric}']:.4f} "
        f"({report['n_holdout']} rows), run {report['run_id']}"
    )


if __name__ == "__main__":
    main()
