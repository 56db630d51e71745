"""Stage `train`: fit the churn model on point-in-time features and register it in MLflow.

The training set is the labels file joined point-in-time onto the Feast offline store.
The newest ``train.test_size`` share of snapshots is held out (out-of-time validation);
the holdout is written to ``data/holdout.parquet`` so `evaluate` scores the candidate and
the champion on exactly the same rows. The model (StandardScaler + LogisticRegression)
is logged with its signature and exact requirements and registered as a new version of
``model.name``; `evaluate` decides whether it becomes the ``champion``.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import Settings, load_settings
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN, TIMESTAMP_COLUMN
from ..telemetry import stage_entry

if TYPE_CHECKING:
    from feast import FeatureStore
    from sklearn.pipeline import Pipeline

# Keys of params.yaml's `train` section that are hyper-parameters of the model.
MODEL_PARAM_KEYS = ("C", "class_weight", "max_iter")


def score(metric: str, y_true: Any, proba: Any) -> float:
    """Holdout metric ``metric`` (higher is better) of positive-class probabilities."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scorers = {"roc_auc": roc_auc_score, "average_precision": average_precision_score}
    if metric not in scorers:
        raise ValueError(f"unknown metric {metric!r}; use one of {sorted(scorers)}")
    return float(scorers[metric](y_true, proba))


def load_training_frame(settings: Settings, store: FeatureStore | None = None) -> pd.DataFrame:
    """Labels joined point-in-time with their features from Feast; rows missing any dropped."""
    from ..platform.feature_store import historical_features, open_store

    labels = pd.read_parquet(settings.paths.labels)
    frame = historical_features(store or open_store(settings), labels)
    return frame.dropna(subset=FEATURE_COLUMNS).reset_index(drop=True)


def split_holdout(frame: pd.DataFrame, test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-time split: the newest ``test_size`` share of snapshots is the holdout."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    ordered = frame.sort_values([TIMESTAMP_COLUMN, ENTITY_COLUMN], kind="stable")
    n_holdout = max(1, round(len(ordered) * test_size))
    train, holdout = ordered.iloc[:-n_holdout], ordered.iloc[-n_holdout:]
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
    """StandardScaler + LogisticRegression with ``params`` (C, class_weight, max_iter)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(
        C=float(params.get("C", 1.0)),
        class_weight=params.get("class_weight"),
        max_iter=int(params.get("max_iter", 1000)),
    )
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def cv_score(train: pd.DataFrame, params: dict[str, Any], folds: int, metric: str) -> float:
    """Mean ``metric`` of ``params`` over ``folds`` folds grouped by customer."""
    from sklearn.model_selection import GroupKFold

    x, y = train[FEATURE_COLUMNS], train[LABEL_COLUMN]
    scores = []
    for fit_idx, val_idx in GroupKFold(n_splits=folds).split(x, y, groups=train[ENTITY_COLUMN]):
        model = build_pipeline(params).fit(x.iloc[fit_idx], y.iloc[fit_idx])
        scores.append(score(metric, y.iloc[val_idx], model.predict_proba(x.iloc[val_idx])[:, 1]))
    return float(sum(scores) / len(scores))


def holdout_metrics(y_true: Any, proba: Any) -> dict[str, float]:
    """Every holdout metric logged for a model."""
    from sklearn.metrics import brier_score_loss, log_loss

    return {
        "roc_auc": score("roc_auc", y_true, proba),
        "average_precision": score("average_precision", y_true, proba),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, proba)),
    }


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

    metric = str(settings.params.get("evaluate", {}).get("metric", "roc_auc"))
    x_train, y_train = train[FEATURE_COLUMNS], train[LABEL_COLUMN]
    x_holdout, y_holdout = holdout[FEATURE_COLUMNS], holdout[LABEL_COLUMN]
    pipeline = build_pipeline(params).fit(x_train, y_train)
    proba = pipeline.predict_proba(x_holdout)
    metrics = {f"holdout_{k}": v for k, v in holdout_metrics(y_holdout, proba[:, 1]).items()}
    metrics["train_roc_auc"] = score("roc_auc", y_train, pipeline.predict_proba(x_train)[:, 1])

    configure_tracking(settings)
    example = x_train.head(5)
    signature = infer_signature(example, pipeline.predict_proba(example))
    requirements = model_requirements()
    with mlflow.start_run(run_name="train") as run:
        mlflow.set_tags(run_tags(settings))
        mlflow.log_params({**params, "test_size": settings.params["train"]["test_size"]})
        mlflow.log_params(
            {
                "n_train": len(train),
                "n_holdout": len(holdout),
                "train_positive_rate": round(float(y_train.mean()), 4),
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
            pyfunc_predict_fn="predict_proba",
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
        pyfunc_predict_fn="predict_proba",
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
