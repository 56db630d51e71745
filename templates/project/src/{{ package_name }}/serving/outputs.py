"""What the model answers for one row, by ``schema.TASK``: fields, labels, scores, metric.

One table of data drives every task-aware piece of serving and verify:

* **binary**: ``churn_probability`` (P(class 1)) and ``churn`` (``>= threshold``);
* **multiclass**: ``label`` (the most probable of ``schema.LABEL_CLASSES``) and
  ``probabilities`` (one per class, by class name);
* **regression**: ``prediction`` (the predicted value).

:func:`model_scores` shapes what a model returned (``predict_proba`` or, for regression,
``predict``) as the task's scores: ``(n,)`` (binary, regression) or ``(n, classes)``
(multiclass); :func:`raw_scorer` picks that method of a fitted model. :func:`labelled`
turns scores into response rows, :func:`prediction_fields` gives the response model its
fields, :func:`row_scores` reads the numbers back from a response row (verify compares
them), and :data:`SCORE_HISTOGRAM` names the Prometheus histogram of served scores.

Flat outputs (one column per number: batch scoring's table, the V2 protocol's tensors,
SageMaker's CSV answer) are :data:`COLUMNS`, filled by :func:`score_columns`: binary
``churn_probability``, ``churn``; multiclass ``label`` then ``probability_<class>`` per
class; regression ``prediction``. :func:`row_labels` gives each row's decision (the A/B
report's label agreement).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
from pydantic import Field
from typing_extensions import TypedDict

from ..schema import ENTITY_COLUMN, LABEL_CLASSES, LABEL_COLUMN, TASK

PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Histogram buckets of probabilities (binary and multiclass)."""
VALUE_BUCKETS = (0.0, *(10.0**power for power in range(-2, 7)))
"""Histogram buckets of predicted values (regression): 0, then 0.01 .. 1e6 by decades.

Negative values count in ``le="0.0"``: the Prometheus client drops ``_count`` and ``_sum``
from a histogram with a negative bucket."""

SCORE_FIELD = {
    "binary": "churn_probability",
    "multiclass": "probabilities",
    "regression": "prediction",
}[TASK]
"""The response field holding a row's score(s)."""
LABEL_FIELD: str | None = {"binary": "churn", "multiclass": "label", "regression": None}[TASK]
"""The response field holding a row's decision, if the task has one."""
OUTPUT_FIELDS: tuple[str, ...] = (SCORE_FIELD, *([LABEL_FIELD] if LABEL_FIELD else []))
"""Every output field of a prediction (all null on a row that failed)."""
COLUMNS: tuple[str, ...] = (
    ("label", *(f"probability_{name}" for name in LABEL_CLASSES))
    if TASK == "multiclass"
    else OUTPUT_FIELDS
)
"""The flat output columns of a prediction (see the module docstring), in order."""
USES_THRESHOLD = TASK == "binary"
"""Whether a probability threshold decides the label (the response then reports it)."""

# name, help text and buckets of the histogram of the scores served.
SCORE_HISTOGRAM: tuple[str, str, tuple[float, ...]] = {
    "binary": (
        "prediction_churn_probability",
        "Distribution of the churn probabilities served",
        PROBABILITY_BUCKETS,
    ),
    "multiclass": (
        "prediction_confidence",
        "Distribution of the predicted class's probability",
        PROBABILITY_BUCKETS,
    ),
    "regression": ("prediction_value", "Distribution of the predicted values", VALUE_BUCKETS),
}[TASK]

_typed_dict: Any = TypedDict
ClassProbabilities: Any = _typed_dict("ClassProbabilities", dict.fromkeys(LABEL_CLASSES, float))
"""One probability per class, keyed by class name (multiclass responses)."""


def prediction_fields() -> dict[str, Any]:
    """The output fields of a prediction as ``pydantic.create_model`` field definitions."""
    if TASK == "multiclass":
        return {
            "label": (
                Literal[LABEL_CLASSES] | None,
                Field(description="The most probable class; null when the row failed."),
            ),
            "probabilities": (
                ClassProbabilities | None,
                Field(description="P(class) for every class; null when the row failed."),
            ),
        }
    if TASK == "regression":
        return {
            "prediction": (
                float | None,
                Field(description="The predicted value; null when the row failed."),
            )
        }
    return {
        "churn_probability": (
            float | None,
            Field(description="P(churn); null when the row failed."),
        ),
        "churn": (
            bool | None,
            Field(description="churn_probability >= threshold; null on failure."),
        ),
    }


def raw_scorer(model: Any) -> Callable[[Any], Any]:
    """The method of a fitted sklearn model that gives the task's scores (before shaping)."""
    scorer: Callable[[Any], Any] = (
        model.predict if TASK == "regression" else model.predict_proba
    )
    return scorer


def model_scores(raw: Any, rows: int) -> np.ndarray:
    """The scores of TASK from a model's raw output for ``rows`` rows (float64).

    Binary: P(class 1), ``(n,)`` (sklearn's ``(n, 2)`` gives its last column); multiclass:
    ``(n, classes)``; regression: ``(n,)`` (an ``(n, 1)`` ONNX output is flattened).
    """
    scores = np.asarray(raw, dtype=np.float64)
    expected: tuple[int, ...] = (rows, len(LABEL_CLASSES)) if TASK == "multiclass" else (rows,)
    if rows == 0 and scores.size == 0:  # nothing was scored (e.g. every row incomplete)
        return np.zeros(expected)
    if TASK != "multiclass" and scores.ndim == 2:
        scores = scores[:, -1] if TASK == "binary" else scores.reshape(-1)
    if scores.shape != expected:
        raise ValueError(f"model returned shape {scores.shape} for {rows} rows")
    return scores


def observed(scores: np.ndarray) -> np.ndarray:
    """One number per row for :data:`SCORE_HISTOGRAM` (multiclass: the top probability)."""
    return scores.max(axis=1) if scores.ndim == 2 else scores


def labelled(scores: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """Response rows (the task's output fields) for ``scores`` of :func:`model_scores`."""
    if len(scores) == 0:  # e.g. only unknown ids: an empty (0,) array whatever the task
        return []
    if TASK == "multiclass":
        labels = [LABEL_CLASSES[i] for i in np.argmax(scores, axis=1).tolist()]
        return [
            {"label": label, "probabilities": dict(zip(LABEL_CLASSES, row, strict=True))}
            for label, row in zip(labels, scores.tolist(), strict=True)
        ]
    if TASK == "regression":
        return [{"prediction": value} for value in scores.tolist()]
    decisions = (scores >= threshold).tolist()
    return [
        {"churn_probability": p, "churn": label}
        for p, label in zip(scores.tolist(), decisions, strict=True)
    ]


def score_columns(scores: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """:data:`COLUMNS` of ``scores`` (:func:`model_scores`), one array of n values each.

    Probabilities and predictions are float64, binary labels bool, class labels object
    (the class names of ``schema.LABEL_CLASSES``).
    """
    if TASK == "multiclass":
        names = np.asarray(LABEL_CLASSES, dtype=object)
        top = np.argmax(scores, axis=1) if len(scores) else np.zeros(0, dtype=np.int64)
        return {
            "label": names[top],
            **{column: scores[:, i] for i, column in enumerate(COLUMNS[1:])},
        }
    if TASK == "regression":
        return {"prediction": scores}
    return {"churn_probability": scores, "churn": scores >= threshold}


def row_labels(scores: np.ndarray, threshold: float) -> list[Any] | None:
    """Each row's decision (binary: ``p >= threshold``; multiclass: the most probable
    class); None for regression, which has none."""
    if LABEL_FIELD is None:
        return None
    labels: list[Any] = score_columns(scores, threshold)[LABEL_FIELD].tolist()
    return labels


def failed() -> dict[str, None]:
    """The output fields of a row that has no prediction (all null)."""
    return dict.fromkeys(OUTPUT_FIELDS)


ID_FIELD = "customer_id"
"""The API's name for a prediction's id (``schemas.Prediction``), whatever the entity
column of the data contract is called."""
UNKNOWN_ID = f"unknown {ENTITY_COLUMN}"
"""The ``error`` of a requested id the feature store has no features of."""


def answers_by_id(
    customer_ids: list[int], known: list[bool], predictions: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The answers of an id request, in its order: each known id with the next of
    ``predictions`` (one per known id), an unknown one with :func:`failed` and
    :data:`UNKNOWN_ID`."""
    scored = iter(predictions)
    return [
        {ID_FIELD: customer_id, **next(scored)}
        if ok
        else {ID_FIELD: customer_id, **failed(), "error": UNKNOWN_ID}
        for customer_id, ok in zip(customer_ids, known, strict=True)
    ]


def row_scores(item: dict[str, Any]) -> list[float]:
    """The numbers of one response row (to compare served with offline scores).

    Raises ValueError when the row's fields do not fit the task (a probability outside
    [0, 1], a label that disagrees with its scores, a missing class).
    """
    value = item.get(SCORE_FIELD)
    if TASK == "multiclass":
        if not isinstance(value, dict) or list(value) != list(LABEL_CLASSES):
            raise ValueError(f"probabilities {value!r} do not name the classes {LABEL_CLASSES}")
        scores = [float(p) for p in value.values()]
        if any(not 0.0 <= p <= 1.0 for p in scores) or abs(sum(scores) - 1.0) > 1e-6:
            raise ValueError(f"probabilities {value!r} are not a distribution")
        if item.get("label") != LABEL_CLASSES[int(np.argmax(scores))]:
            raise ValueError(f"label {item.get('label')!r} is not the most probable class")
        return scores
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"{SCORE_FIELD} {value!r} is not a finite number")
    if TASK == "binary" and not 0.0 <= value <= 1.0:
        raise ValueError(f"{SCORE_FIELD} {value!r} is not a probability")
    return [float(value)]


def check_decision(item: dict[str, Any], threshold: float | None) -> None:
    """Raise ValueError when a binary row's label disagrees with ``p >= threshold``."""
    if USES_THRESHOLD and threshold is not None:
        probability = item[SCORE_FIELD]
        if item.get(LABEL_FIELD or "") is not (probability >= threshold):
            raise ValueError(
                f"label {item.get(LABEL_FIELD or '')!r} disagrees with"
                f" {probability} >= {threshold}"
            )


def summary(items: list[dict[str, Any]]) -> str:
    """A few words on what ``items`` predicted (verify's step output)."""
    if TASK == "multiclass":
        counts: dict[str, int] = {}
        for item in items:
            counts[str(item["label"])] = counts.get(str(item["label"]), 0) + 1
        return "labels " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    if TASK == "regression":
        return "predictions " + ", ".join(f"{item['prediction']:.3g}" for item in items)
    return f"{sum(bool(item['churn']) for item in items)} labelled {LABEL_COLUMN}"
