"""The BentoML service: the registry's ``champion`` behind BentoML, same contract as the API.

``bentoml serve <package>.serving.bento_service:ChurnService`` serves ``POST /predict`` with the
FastAPI app's request and response (:class:`.schemas.PredictRequest`: ``rows`` of features
or ``customer_ids`` read from Feast), ``POST /model_info`` (the model it scores with),
BentoML's own ``/livez``, ``/readyz`` and Prometheus ``/metrics``, and the FastAPI app's
request ids and OpenTelemetry spans (``POST /predict`` -> ``feature lookup``, ``model
predict``). It loads the champion the way the FastAPI app does
(:func:`.model.mlflow_model_loader`: MLflow runs in a subprocess) when the worker starts,
so ``/readyz`` answers 200 only once a model is loaded.
"""

from __future__ import annotations

import os
from typing import Any, cast

import bentoml
import numpy as np
from pydantic import ConfigDict

from .. import telemetry
from ..config import load_settings
from ..schema import FEATURE_COLUMNS
from .context import RequestContextMiddleware
from .model import (
    FeastFeatureLookup,
    LoadedModel,
    align_features,
    mlflow_model_loader,
    to_model_frame,
)
from .outputs import (
    SCORE_HISTOGRAM,
    USES_THRESHOLD,
    answers_by_id,
    labelled,
    model_scores,
    observed,
)
from .schemas import PredictRequest

SCORES = bentoml.metrics.Histogram(
    name=SCORE_HISTOGRAM[0],
    documentation=f"{SCORE_HISTOGRAM[1]} (BentoML service)",
    buckets=SCORE_HISTOGRAM[2],
)


def _labelled(scores: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """The task's answer rows (:func:`.outputs.labelled`), each row's score observed."""
    for value in observed(scores).tolist():
        SCORES.observe(value)
    return labelled(scores, threshold)


class BentoPredictRequest(PredictRequest):
    """:class:`.schemas.PredictRequest` without its OpenAPI extras (BentoML's schema model
    refuses ``examples``); the same fields and the same exactly-one-input validation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=None)


@bentoml.service(name="churn", workers=1, traffic={"timeout": 30})
class ChurnService:
    """Scores rows with the champion loaded at start-up (BentoML worker process); answers
    in the task's shape (:mod:`.outputs`), like the FastAPI app's ``/predict``."""

    def __init__(self) -> None:
        telemetry.configure_tracing("serving")  # off unless an OTLP endpoint is set
        self.settings = load_settings()
        runtime = os.environ.get("SERVING_RUNTIME") or "sklearn"
        self.model: LoadedModel = mlflow_model_loader(self.settings, runtime=runtime)()
        self.lookup = FeastFeatureLookup(self.settings)
        self.threshold = float(os.environ.get("CHURN_THRESHOLD") or 0.5)

    @bentoml.api(input_spec=BentoPredictRequest)
    def predict(
        self, customer_ids: list[int] | None = None, rows: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Score ``rows`` directly, or ``customer_ids`` with features from the online store."""
        if rows is not None:
            import pandas as pd

            frame = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
            with telemetry.span("model predict", rows=len(rows), runtime=self.model.runtime):
                scores = self.model.predict(to_model_frame(frame, self.model))
            predictions = _labelled(scores, self.threshold)
        else:
            predictions = self._predict_ids([int(i) for i in customer_ids or []])
        return {
            "model_name": self.model.name,
            "model_version": self.model.version,
            **({"threshold": self.threshold} if USES_THRESHOLD else {}),
            "predictions": predictions,
        }

    @bentoml.api
    def model_info(self) -> dict[str, Any]:
        """The registry identity of the model this service scores with."""
        return {
            "model_name": self.model.name,
            "model_version": self.model.version,
            "runtime": self.model.runtime,
        }

    def _predict_ids(self, customer_ids: list[int]) -> list[dict[str, Any]]:
        with telemetry.span("feature lookup", customers=len(customer_ids)):
            frame, complete = align_features(self.lookup(customer_ids), customer_ids)
        with telemetry.span("model predict", rows=int(complete.sum()), runtime=self.model.runtime):
            scores = (
                self.model.predict(to_model_frame(frame[complete], self.model))
                if complete.any()
                else model_scores([], 0)
            )
        return answers_by_id(customer_ids, complete.tolist(), _labelled(scores, self.threshold))


# The FastAPI app's outermost middleware, inside BentoML's own: the request id (X-Request-ID
# in and out) and, when an OTLP endpoint is set, the request's span with the feature lookup
# and model spans under it (telemetry.server_span starts it in a new trace).
# (bentoml.service returns a Service; its stubs type the decorated class as the class)
cast("bentoml.Service[Any]", ChurnService).add_asgi_middleware(RequestContextMiddleware)
