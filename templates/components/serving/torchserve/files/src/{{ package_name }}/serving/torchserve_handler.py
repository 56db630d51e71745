"""TorchServe's custom handler of the champion (``serving=torchserve``).

TorchServe (``.venv-torchserve``) loads the model archive that :mod:`.torchserve_server`
built: its entry point (``handler.py``, written by :mod:`.torchserve_export`) imports
:func:`handle` from here, with ``PYTHONPATH=src``. The handler imports only this package's
data contract (``schema``), request model (``schemas.PredictRequest``) and validation
messages (``errors``), task table (``outputs``), ONNX Runtime scorer and Feast lookup
(``model``): never MLflow, scikit-learn or torch (TorchServe's worker imports torch itself).

The API is this project's own ``/predict`` contract: ``POST /predictions/<model>[/<version>]``
with ``{"customer_ids": [...]}`` (features read from the project's Feast online store: the
handler's pre-processing step, :class:`.model.FeastFeatureLookup`; an id the store does
not know gets ``error: "unknown <entity>"`` and no scores) or ``{"rows": [...]}`` (every
feature of ``schema.py``), with the FastAPI app's validation rules and at most
``SERVING_MAX_BATCH`` of either, answers ``{"model_name", "model_version", ["threshold",]
"predictions": [...]}`` with the task's fields. A body that is not JSON or fails the
contract gets a 422 with a one-line ``{"error": ...}`` (no stack trace); a failed Feast
lookup a 503. Each request of a TorchServe batch is answered on its own.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..schema import FEATURE_COLUMNS
from . import outputs
from .errors import field_errors, validation_message
from .schemas import PredictRequest

MODEL_FILE = "model.onnx"
IDENTITY_FILE = "model.json"
ENTRY_POINT = "handler.py"
"""The archive's entry point, written by :mod:`.torchserve_export`: imports :func:`handle`."""
DEFAULT_THRESHOLD = 0.5
"""P(churn) at and above which a row is labelled churn (binary), unless ``CHURN_THRESHOLD``."""
INVALID = 422
"""The status of a request the contract refuses (as the FastAPI app's ``/predict``)."""
UNAVAILABLE = 503
"""The status of an id request whose Feast lookup failed (as the FastAPI app's)."""
LOG = logging.getLogger(__name__)

FeatureLookup = Callable[[list[int]], Any]
"""Customer ids -> their online features (a frame: ENTITY_COLUMN + FEATURE_COLUMNS)."""


class Refused(ValueError):
    """A request answered with ``status`` and a one-line message instead of predictions."""

    def __init__(self, message: str, status: int = INVALID) -> None:
        super().__init__(message)
        self.status = status


def parse(body: Any) -> Any:
    """One request body (bytes, text or decoded JSON) as a validated ``PredictRequest``."""
    try:
        if isinstance(body, (bytes, bytearray, str)):
            return PredictRequest.model_validate_json(body)
        return PredictRequest.model_validate(body)
    except ValidationError as exc:
        raise Refused(validation_message(field_errors(exc.errors()))) from None


def feature_matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    """The ``[n, features]`` float64 matrix (FEATURE_COLUMNS order); a null is NaN."""
    return np.array([[row[name] for name in FEATURE_COLUMNS] for row in rows], dtype=np.float64)


class Scorer:
    """The champion's ONNX graph and identity, from the archive's extracted directory."""

    def __init__(self, model_dir: Path, threshold: float, lookup: FeatureLookup) -> None:
        from .model import onnx_predict_proba

        found = json.loads((model_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
        self.name, self.version = str(found["name"]), str(found["version"])
        self.threshold = threshold
        self.lookup = lookup
        self._predict: Callable[[Any], Any] = onnx_predict_proba(
            (model_dir / MODEL_FILE).read_bytes()
        )

    def score(self, features: np.ndarray) -> list[dict[str, Any]]:
        """The task's fields of each row of the ``[n, features]`` matrix."""
        if len(features) == 0:
            return []
        scores = outputs.model_scores(self._predict(features), len(features))
        return outputs.labelled(scores, self.threshold)

    def by_ids(self, customer_ids: list[int]) -> list[dict[str, Any]]:
        """Predictions of ``customer_ids`` from their online features, in request order."""
        from .model import align_features

        try:
            frame, complete = align_features(self.lookup(customer_ids), customer_ids)
        except Exception as exc:  # the store's failure, one line for the client
            LOG.warning("feature lookup failed: %s", exc)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Refused(f"feature store lookup failed: {first[:200]}", UNAVAILABLE) from None
        scored = self.score(frame[FEATURE_COLUMNS][complete].to_numpy(dtype=np.float64))
        return outputs.answers_by_id(customer_ids, complete.tolist(), scored)

    def answer(self, body: Any) -> dict[str, Any]:
        """The response of one request body (:class:`Refused` when refused)."""
        request = parse(body)
        answer: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if outputs.USES_THRESHOLD:
            answer["threshold"] = self.threshold
        if request.rows is not None:
            answer["predictions"] = self.score(feature_matrix(list(request.rows)))
        else:
            answer["predictions"] = self.by_ids([int(i) for i in request.customer_ids])
        return answer


_SCORER: Scorer | None = None


def feast_lookup() -> FeatureLookup:
    """The project's Feast online store (``PROJECT_ROOT``), opened now if it can be.

    A store that does not open yet (no ``make pipeline`` run) is opened again by the first
    id request, whose failure is that request's 503: rows are scored either way.
    """
    from ..config import load_settings
    from .model import FeastFeatureLookup

    lookup = FeastFeatureLookup(load_settings())
    try:
        lookup.warm_up()
    except Exception as exc:  # reported again, per request, by Scorer.by_ids
        LOG.warning("the Feast store did not open (ids answer 503 until it does): %s", exc)
    return lookup


def request_body(item: Any) -> Any:
    """The payload of one request of TorchServe's batch (``body`` or ``data``)."""
    if isinstance(item, dict) and ("body" in item or "data" in item):
        return item.get("body", item.get("data"))
    return item


def respond(
    scorer: Scorer, data: list[Any], set_status: Callable[[int, str, int], None]
) -> list[Any]:
    """One answer per request of ``data``; a refused one gets its status via ``set_status``."""
    answers: list[Any] = []
    for index, item in enumerate(data):
        try:
            answers.append(scorer.answer(request_body(item)))
        except Refused as exc:
            phrase = "Service Unavailable" if exc.status == UNAVAILABLE else "Unprocessable Entity"
            set_status(exc.status, phrase, index)
            answers.append({"error": str(exc)})
    return answers


def handle(data: list[Any] | None, context: Any) -> list[Any] | None:
    """TorchServe's entry point: load on the first call (``data`` None), then score."""
    global _SCORER
    if _SCORER is None:
        model_dir = Path(context.system_properties["model_dir"])
        threshold = float(os.environ.get("CHURN_THRESHOLD", DEFAULT_THRESHOLD))
        _SCORER = Scorer(model_dir, threshold, feast_lookup())
        LOG.warning("%s v%s loaded from %s", _SCORER.name, _SCORER.version, model_dir)
    if data is None:
        return None

    def set_status(code: int, phrase: str, index: int) -> None:
        context.set_response_status(code, phrase, index)

    return respond(_SCORER, data, set_status)
