"""The metrics of the data contract's task, shared by `train`, `tune`, `evaluate` and `monitor`.

``schema.TASK`` decides them: ROC AUC, average precision, log loss and Brier score
(binary); macro F1, accuracy and log loss (multiclass); RMSE, MAE and R² (regression).
The champion gate (``evaluate.metric``) is one of them; for the lower-is-better ones the
gate and the tuners flip the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..schema import (
    ENTITY_COLUMN,
    FEATURE_COLUMNS,
    LABEL_CLASSES,
    LABEL_COLUMN,
    LABEL_VALUES,
    TASK,
)

if TYPE_CHECKING:
    import pandas as pd

# Metrics of each task; the champion gate (`evaluate.metric`) is one of them.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "average_precision", "log_loss", "brier"),
    "multiclass": ("macro_f1", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
"""Metrics where a smaller value is better (the champion gate flips their sign)."""


def predictions(model: Any, features: Any) -> Any:
    """What the metrics of TASK score: P(class 1) (binary), class probabilities
    (multiclass) or predicted values (regression)."""
    if TASK == "regression":
        return model.predict(features)
    proba = model.predict_proba(features)
    return proba[:, 1] if TASK == "binary" else proba


def score(metric: str, y_true: Any, predicted: Any) -> float:
    """Holdout metric ``metric`` of ``predicted`` (see :func:`predictions`) for TASK."""
    import numpy as np
    from sklearn import metrics as m

    labels = list(LABEL_VALUES)
    scorers: dict[str, Any] = {
        "roc_auc": m.roc_auc_score,
        "average_precision": m.average_precision_score,
        "brier": m.brier_score_loss,
        "log_loss": lambda y, p: m.log_loss(y, p, labels=labels),
        "macro_f1": lambda y, p: m.f1_score(y, np.argmax(p, axis=1), average="macro"),
        "accuracy": lambda y, p: m.accuracy_score(y, np.argmax(p, axis=1)),
        "rmse": lambda y, p: m.root_mean_squared_error(y, p),
        "mae": m.mean_absolute_error,
        "r2": m.r2_score,
    }
    if metric not in TASK_METRICS[TASK]:
        raise ValueError(f"unknown metric {metric!r}; use one of {sorted(TASK_METRICS[TASK])}")
    return float(scorers[metric](y_true, predicted))


def gain(metric: str, candidate: float, champion: float) -> float:
    """How much better ``candidate`` is than ``champion`` on ``metric`` (positive: better)."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion


def holdout_metrics(y_true: Any, predicted: Any) -> dict[str, float]:
    """Every holdout metric of TASK logged for a model."""
    return {metric: score(metric, y_true, predicted) for metric in TASK_METRICS[TASK]}


def cv_score(train: pd.DataFrame, params: dict[str, Any], folds: int, metric: str) -> float:
    """Mean ``metric`` of ``params`` over ``folds`` folds grouped by entity."""
    from sklearn.model_selection import GroupKFold

    from .train import build_pipeline

    x, y = train[FEATURE_COLUMNS], train[LABEL_COLUMN]
    scores = []
    for fit_idx, val_idx in GroupKFold(n_splits=folds).split(x, y, groups=train[ENTITY_COLUMN]):
        model = build_pipeline(params).fit(x.iloc[fit_idx], y.iloc[fit_idx])
        scores.append(score(metric, y.iloc[val_idx], predictions(model, x.iloc[val_idx])))
    return float(sum(scores) / len(scores))


def require_every_class(train: pd.DataFrame) -> None:
    """Refuse (ValueError, one line) a training split that lacks a class of the contract."""
    if TASK != "regression":
        missing = sorted(set(LABEL_VALUES) - set(train[LABEL_COLUMN].tolist()))
        if missing:
            names = ", ".join(LABEL_CLASSES[i] for i in missing)
            raise ValueError(
                f"no training row of class(es) {names}: they only occur in the newest rows"
                " (held out, or the current batch). Is the table sorted by its target? With"
                " no event time the file order stands for time: shuffle the rows, or name"
                " an event-time column"
            )

