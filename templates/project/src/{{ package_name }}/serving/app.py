"""The churn scoring API: ``create_app`` builds it around a model loader and a feature lookup.

Endpoints
---------
``GET /health``   liveness: 200 as soon as the process answers.
``GET /ready``    readiness: 200 once the champion model is loaded and warmed up, else 503;
                  the body names the model, its version and the feature store state.
``POST /predict`` ``{"customer_ids": [...]}`` (features from Feast's online store, read in
                  one batched lookup) or ``{"rows": [{feature: value, ...}, ...]}``.
                  Predictions come back in request order with the model version. An
                  unknown customer id does not fail the batch: its row carries
                  ``"error": "unknown customer_id"`` and null probability/label.
                  Invalid input gets 422 with a readable ``message``; 503 while the
                  model is not loaded or the feature store is unreachable.
``GET /metrics``  Prometheus exposition (see :mod:`.metrics`).

Plus the routes the stack's serving platform contributes (:mod:`.routes`: the V2 / Open
Inference Protocol for KServe, Seldon and the plain Kubernetes Deployment; SageMaker's
``/ping`` and ``/invocations``).

Limits: a body over ``SERVING_MAX_BODY_BYTES`` (default 4 MiB) gets 413 (before it is
read when its length is declared); a request still unanswered after
``SERVING_REQUEST_TIMEOUT`` seconds (default 10) gets 504; request headers must arrive
within ``SERVING_HEADER_TIMEOUT`` seconds (408, see :mod:`.protocol`). Every error, from
every route and limit, has one shape: ``{"error": "..."}`` (see :mod:`.errors`).

OpenAPI: every route documents its 200 model and its error statuses, though handlers
return pre-serialized responses (``response_model`` is documentation here, not a
second serialization pass).

Speed: the ``/predict`` body is parsed and validated in one pass by pydantic-core
(``model_validate_json``), rows become one float64 array without a per-row Python loop
(ONNX models, and sklearn models fitted on FEATURE_COLUMNS, skip the DataFrame: ~0.5 ms
per call less, and a rows-only ONNX worker never imports pandas), and
responses are rendered by orjson. Batches whose measured model time fits
``SERVING_INLINE_MS`` (default 2 ms; measured at warm-up) are scored on the event loop;
bigger ones, and every feature-store lookup, run in a worker thread.

Rollout (:mod:`.rollout`): with ``SERVING_ROLLOUT=canary`` a share of ``/predict``
requests (``SERVING_CANARY_PERCENT``, by request id) is answered by the registry's
``challenger``; with ``shadow`` the challenger scores every ``/predict`` request beside the
champion, which answers, and both are logged (JSON lines) for ``make ab-report``.
``SERVING_MODEL_ALIAS=challenger`` serves the challenger alone, in a replica of its own,
where the platform splits the traffic (KServe canary revision, SageMaker variant).

The model is loaded once, at startup, by a background thread started from the
lifespan handler: ``/health`` answers at once, ``/ready`` turns 200 when loading and the
warm-up prediction succeeded. A failed load (no ``champion`` yet, registry down) is
retried every ``MODEL_LOAD_RETRY_SECONDS`` until it works. MLflow resolves and downloads
the model in a short-lived subprocess (:mod:`.fetch_model`), so the worker never imports
it. The Feast store is opened next to the model load (``SERVING_FEATURE_STORE=startup``,
the default) or by the first ``customer_ids`` request (``lazy``: a rows-only worker never
imports Feast).
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from .. import telemetry
from ..config import Settings, load_settings
from ..schema import FEATURE_COLUMNS, FEATURE_DTYPES
from .auth import api_key_dependencies, configured_key
from .context import RequestContextMiddleware
from .errors import documented_errors, install_error_handlers, invalid_input
from .limits import BodyLimitMiddleware, RequestTimeoutMiddleware
from .metrics import MetricsMiddleware, ServingMetrics
from .model import (
    FeastFeatureLookup,
    FeatureLookup,
    LoadedModel,
    ModelLoader,
    WarmableLookup,
    align_features,
    array_dtype,
    inline_row_limit,
    mlflow_model_loader,
    to_model_frame,
    warmup_input,
)
from .outputs import USES_THRESHOLD, answers_by_id, labelled
from .rollout import CHALLENGER_ALIAS, Rollout, ShadowLog, to_challenger
from .routes import ROUTE_MODULES
from .schemas import (
    MAX_BATCH_ROWS,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)

if TYPE_CHECKING:  # imported lazily: by-id requests and DataFrame models only
    import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_INLINE_MS = 2.0
FEATURE_STORE_OPEN_MODES = ("startup", "lazy")


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (numpy arrays and scalars serialized natively).

    A ``JSONResponse`` subclass, so FastAPI documents each route's ``response_model`` as
    its 200 schema; handlers return it already built, so nothing is serialized twice.
    """

    def render(self, content: Any) -> bytes:
        """Serialize ``content`` with orjson."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class ServingState:
    """What the app knows about its model and feature store; shared with the loader thread."""

    model: LoadedModel | None = None
    model_error: str | None = None
    challenger: LoadedModel | None = None
    """The ``challenger`` alias's model (``SERVING_ROLLOUT=canary|shadow``), once loaded."""
    challenger_error: str | None = None
    feature_store: str = "loading"
    """``loading`` (being opened), ``ready``, ``unavailable``, or ``lazy`` (opened by the
    first ``customer_ids`` request, ``SERVING_FEATURE_STORE=lazy``)."""
    feature_store_error: str | None = None
    inline_rows: int = 0
    """Batches up to this many rows are scored on the event loop (measured at warm-up)."""
    stop: threading.Event = field(default_factory=threading.Event)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _configured_model_name(settings: Settings) -> str | None:
    try:
        return settings.model_name
    except (OSError, KeyError, TypeError):
        return None


_COLUMN_GETTERS = [
    (name, operator.itemgetter(name), array_dtype(dtype)) for name, dtype in FEATURE_DTYPES.items()
]


def rows_to_frame(rows: list[dict[str, int | float]]) -> pd.DataFrame:
    """Turn validated feature rows into the model's input frame, one typed array per column.

    ``np.fromiter`` over ``map(itemgetter)`` runs the per-row iteration in C (about 4x
    faster than ``DataFrame.from_records`` for 1,000 rows) and converts ints exactly.
    """
    import pandas as pd

    count = len(rows)
    return pd.DataFrame(
        {
            name: np.fromiter(map(getter, rows), dtype=dtype, count=count)
            for name, getter, dtype in _COLUMN_GETTERS
        }
    )


_ROW_VALUES = operator.itemgetter(*FEATURE_COLUMNS)


def rows_to_array(rows: list[dict[str, int | float]]) -> np.ndarray:
    """Turn validated feature rows into one ``(n, n_features)`` float64 array.

    Columns come in FEATURE_COLUMNS order; ``np.fromiter`` with a row dtype fills the
    array from C, with no Python loop per row (ints up to 2**53 convert exactly, as in
    sklearn's own DataFrame conversion).
    """
    if len(FEATURE_COLUMNS) == 1:
        return np.fromiter(map(_ROW_VALUES, rows), dtype=np.float64, count=len(rows))[:, None]
    row_type = np.dtype((np.float64, (len(FEATURE_COLUMNS),)))
    return np.fromiter(map(_ROW_VALUES, rows), dtype=row_type, count=len(rows))


def _warmed(loader: ModelLoader) -> LoadedModel:
    """The loader's model, once it has scored the all-zero warm-up row."""
    model = loader()
    model.predict(warmup_input(model))
    return model


def _load_model(
    state: ServingState,
    loader: ModelLoader,
    metrics: ServingMetrics,
    retry_seconds: float,
    inline_budget: float = DEFAULT_INLINE_MS / 1000,
) -> None:
    attempt = 0
    while not state.stop.is_set():
        attempt += 1
        try:
            model = _warmed(loader)
            inline_rows = inline_row_limit(model, inline_budget, MAX_BATCH_ROWS)
        except Exception as exc:  # any failure: report it on /ready and try again
            state.model_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "model load attempt %d failed (%s); retrying in %.0f s",
                attempt,
                state.model_error,
                retry_seconds,
            )
            state.stop.wait(retry_seconds)
            continue
        state.inline_rows = _env_int("SERVING_INLINE_ROWS", inline_rows)
        state.model, state.model_error = model, None
        metrics.set_model(model)
        logger.info(
            "model %s version %s loaded and warmed up (batches up to %d rows scored inline)",
            model.name,
            model.version,
            state.inline_rows,
        )
        return


def _load_challenger(state: ServingState, loader: ModelLoader, retry_seconds: float) -> None:
    """Load and warm up the challenger, retrying; the champion serves meanwhile."""
    while not state.stop.is_set():
        try:
            state.challenger = _warmed(loader)
        except Exception as exc:  # no challenger alias yet, registry down: retry
            if state.challenger_error is None:
                logger.warning("challenger not loaded (%s); retrying", exc)
            state.challenger_error = f"{type(exc).__name__}: {exc}"
            state.stop.wait(retry_seconds)
        else:
            state.challenger_error = None
            logger.info("challenger version %s loaded", state.challenger.version)
            return


def _open_feature_store(state: ServingState, lookup: FeatureLookup) -> None:
    if not isinstance(lookup, WarmableLookup):
        state.feature_store = "ready"
        return
    try:
        lookup.warm_up()
    except Exception as exc:  # ids requests will retry; rows keep working
        state.feature_store = "unavailable"
        state.feature_store_error = f"{type(exc).__name__}: {exc}"
        logger.warning("feature store unavailable: %s", state.feature_store_error)
        return
    state.feature_store, state.feature_store_error = "ready", None
    logger.info("feature store opened")


def _document_request_models(app: FastAPI) -> None:
    """Put the bodies validated from the raw request (for speed) into the OpenAPI schema.

    ``PredictRequest`` (``/predict``) and the ``REQUEST_MODELS`` of the route modules
    (e.g. V2's ``InferenceRequest``) are parsed by pydantic-core straight from the bytes,
    so FastAPI does not see them as parameters; the routes reference them with ``$ref``
    and this adds their definitions.
    """
    generate = app.openapi
    models: list[type[BaseModel]] = [PredictRequest]
    for module in ROUTE_MODULES:
        models.extend(module.REQUEST_MODELS)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    model_loader: ModelLoader | None = None,
    feature_lookup: FeatureLookup | None = None,
    *,
    settings: Settings | None = None,
    monitor_report: Path | None = None,
    threshold: float | None = None,
    retry_seconds: float | None = None,
    max_body_bytes: int | None = None,
    request_timeout: float | None = None,
    inline_ms: float | None = None,
    feature_store_open: str | None = None,
    api_key: str | None = None,
    rollout: Rollout | None = None,
    challenger_loader: ModelLoader | None = None,
) -> FastAPI:
    """Build the API.

    ``model_loader`` defaults to the MLflow registry's ``champion`` (``SERVING_MODEL_ALIAS``) of
    ``settings.model_name``; ``feature_lookup`` to the project's Feast online store.
    ``monitor_report`` (default ``reports/monitor.json``) feeds the drift gauges;
    ``threshold`` (default ``CHURN_THRESHOLD`` or 0.5) turns probabilities into labels.
    ``max_body_bytes`` (``SERVING_MAX_BODY_BYTES``, 4 MiB) is the largest request body
    (413 above); ``request_timeout`` (``SERVING_REQUEST_TIMEOUT``, 10 s; 0 disables) the
    deadline for an answer (504 after); ``inline_ms`` (``SERVING_INLINE_MS``, 2 ms) the
    model time up to which a batch is scored on the event loop rather than in a thread.
    ``feature_store_open`` (``SERVING_FEATURE_STORE``): ``startup`` (default) opens the
    feature store next to the model load, so ``/ready`` covers it; ``lazy`` opens it on
    the first ``customer_ids`` request (that request pays the Feast import, seconds; a
    worker that only scores ``rows`` never imports Feast, about 45 MB less memory).
    ``api_key`` (``SERVING_API_KEY``; read once, here): when set, ``/predict`` needs it
    in ``X-API-Key`` (401 otherwise); when not, the API is open and OpenAPI says so.
    ``rollout`` (``SERVING_ROLLOUT``, ``SERVING_CANARY_PERCENT``, ``SERVING_SHADOW_LOG``;
    default none) serves ``challenger_loader``'s model (default: the registry's
    ``challenger``) beside the champion as a canary or a shadow (:mod:`.rollout`).
    """
    if settings is None:
        settings = load_settings()
    plan = rollout or Rollout.from_env(settings.paths.root)
    loader = model_loader or mlflow_model_loader(settings, alias=plan.alias)
    lookup = feature_lookup or FeastFeatureLookup(settings)
    cutoff = (
        threshold if threshold is not None else _env_float("CHURN_THRESHOLD", DEFAULT_THRESHOLD)
    )
    retry = (
        retry_seconds if retry_seconds is not None else _env_float("MODEL_LOAD_RETRY_SECONDS", 10.0)
    )
    body_limit = (
        max_body_bytes
        if max_body_bytes is not None
        else _env_int("SERVING_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    )
    timeout = (
        request_timeout
        if request_timeout is not None
        else _env_float("SERVING_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT)
    )
    inline_budget = (
        inline_ms if inline_ms is not None else _env_float("SERVING_INLINE_MS", DEFAULT_INLINE_MS)
    ) / 1000.0
    open_mode = feature_store_open or os.environ.get("SERVING_FEATURE_STORE") or "startup"
    if open_mode not in FEATURE_STORE_OPEN_MODES:
        raise ValueError(
            f"SERVING_FEATURE_STORE must be one of {', '.join(FEATURE_STORE_OPEN_MODES)};"
            f" got {open_mode!r}"
        )
    key = api_key if api_key is not None else configured_key()
    challenger_load = (
        (challenger_loader or mlflow_model_loader(settings, alias=CHALLENGER_ALIAS))
        if plan.active
        else None
    )
    shadow_log = ShadowLog(plan.shadow_log) if plan.mode == "shadow" else None
    metrics = ServingMetrics(monitor_report or settings.paths.monitor_report)
    state = ServingState(feature_store="loading" if open_mode == "startup" else "lazy")
    # Traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (a test may have
    # installed its own exporter already); the app flushes what it started.
    owns_tracing = not telemetry.tracing_enabled() and (
        telemetry.configure_tracing("serving") is not None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.stop.clear()
        threads = [
            threading.Thread(
                target=_load_model,
                args=(state, loader, metrics, retry, inline_budget),
                name="model-loader",
                daemon=True,
            ),
        ]
        if challenger_load is not None:
            threads.append(
                threading.Thread(
                    target=_load_challenger,
                    args=(state, challenger_load, retry),
                    name="challenger-loader",
                    daemon=True,
                )
            )
        if open_mode == "startup":
            threads.append(
                threading.Thread(
                    target=_open_feature_store,
                    args=(state, lookup),
                    name="feature-store",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            state.stop.set()
            if owns_tracing:
                telemetry.shutdown_tracing()

    app = FastAPI(
        title="Churn prediction API",
        description="Scores churn with the MLflow registry's champion model.",
        version="1",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    # Outermost last: metrics see every answer, including the limits' 413 and 504.
    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit)
    app.add_middleware(RequestTimeoutMiddleware, seconds=timeout)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outermost: the request id (and span) covers every answer and every log record.
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.state.serving = state
    app.state.metrics = metrics
    # The routes of the stack's serving platform (V2 protocol, SageMaker's contract...).
    for module in ROUTE_MODULES:
        app.include_router(
            module.create_router(
                lambda: state.model,
                FEATURE_DTYPES,
                threshold=cutoff,
                observe=metrics.observe_predictions,
            )
        )

    @app.get("/health", response_model=HealthResponse, tags=["probes"])
    async def health() -> Response:
        """Liveness probe: the process is up."""
        return OrjsonResponse({"status": "ok"})

    @app.get(
        "/ready",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse}},
        tags=["probes"],
    )
    async def ready() -> Response:
        """Readiness probe: 200 with the model name/version once loaded, else 503."""
        model = state.model
        body = {
            "ready": model is not None,
            "runtime": model.runtime if model else None,
            "model_name": model.name if model else _configured_model_name(settings),
            "model_version": model.version if model else None,
            "model_alias": model.alias if model else plan.alias,
            "feature_store": state.feature_store,
            "detail": state.model_error if model is None else state.feature_store_error,
        }
        if plan.active:
            challenger = state.challenger
            body["rollout"] = plan.mode
            body["challenger_version"] = challenger.version if challenger else None
            body["challenger_detail"] = state.challenger_error
        return OrjsonResponse(body, status_code=200 if model is not None else 503)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=documented_errors(*([401] if key else []), 413, 422, 503, 504),
        dependencies=api_key_dependencies(key),
        tags=["predict"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                },
            }
        },
    )
    async def predict(http_request: Request) -> Response:
        """Score ``rows`` directly, or ``customer_ids`` with features from the online store."""
        model = state.model
        if model is None:
            raise HTTPException(503, f"model not loaded yet: {state.model_error or 'loading'}")
        try:
            request = PredictRequest.model_validate_json(await http_request.body())
        except ValidationError as exc:
            return invalid_input(exc.errors(include_input=False, include_url=False))
        model, shadow = _rollout_models(model)
        background = None
        if request.rows is not None:
            rows = request.rows
            features = rows_to_array(rows) if model.array_input else rows_to_frame(rows)
            started = time.perf_counter()
            with telemetry.span("model predict", rows=len(rows), runtime=model.runtime):
                if len(rows) <= state.inline_rows:
                    probabilities = model.predict(features)
                else:
                    probabilities = await run_in_threadpool(model.predict, features)
            seconds = time.perf_counter() - started
            metrics.observe_predictions(probabilities, "rows")
            predictions = labelled(probabilities, cutoff)
            if shadow is not None:  # scored and logged after the answer is sent
                shadow_features = (
                    rows_to_array(rows) if shadow.array_input else rows_to_frame(rows)
                )
                background = BackgroundTask(
                    _shadow, telemetry.REQUEST_ID.get(), "rows", model, probabilities,
                    seconds, shadow, shadow_features,
                )  # fmt: skip
        else:
            ids = [int(i) for i in request.customer_ids or []]
            predictions = await run_in_threadpool(_predict_ids, model, ids, shadow)
        body = {
            "model_name": model.name,
            "model_version": model.version,
            **({"threshold": cutoff} if USES_THRESHOLD else {}),
            "predictions": predictions,
        }
        if not plan.active:
            return OrjsonResponse(body)
        metrics.rollout_rows.labels(alias=model.alias, version=model.version, role="answered").inc(
            len(predictions)
        )
        return OrjsonResponse(body, headers={"X-Model-Alias": model.alias}, background=background)

    def _rollout_models(champion: LoadedModel) -> tuple[LoadedModel, LoadedModel | None]:
        """(the model that answers this request, the model scoring it in the shadow)."""
        challenger = state.challenger
        if challenger is None:
            return champion, None
        if plan.mode == "shadow":
            return champion, challenger
        request_id = telemetry.REQUEST_ID.get() or ""
        return (challenger if to_challenger(request_id, plan.canary_percent) else champion), None

    def _shadow(
        request_id: str | None,
        source: str,
        champion: LoadedModel,
        probabilities: np.ndarray,
        seconds: float,
        shadow: LoadedModel,
        features: Any,
    ) -> None:
        """Score ``features`` with the shadow model and log both answers (one JSON line)."""
        started = time.perf_counter()
        try:
            shadowed = shadow.predict(features)
        except Exception:  # the challenger never fails the champion's answer
            logger.exception("challenger %s failed to score a shadowed request", shadow.version)
            return
        shadow_seconds = time.perf_counter() - started
        metrics.rollout_rows.labels(alias=shadow.alias, version=shadow.version, role="shadow").inc(
            len(shadowed)
        )
        if shadow_log is None:
            return
        try:
            shadow_log.write(
                {
                    "request_id": request_id,
                    "source": source,
                    "champion": {
                        "version": champion.version,
                        "scores": probabilities.tolist(),
                        "ms": round(seconds * 1000, 4),
                    },
                    CHALLENGER_ALIAS: {
                        "version": shadow.version,
                        "scores": shadowed.tolist(),
                        "ms": round(shadow_seconds * 1000, 4),
                    },
                }
            )
        except OSError as exc:  # a full or read-only disk never fails the answer
            logger.warning("shadow log %s not written: %s", shadow_log.path, exc)

    def _predict_ids(
        model: LoadedModel, customer_ids: list[int], shadow: LoadedModel | None = None
    ) -> list[dict[str, Any]]:
        try:
            with telemetry.span("feature lookup", customers=len(customer_ids)):
                features = lookup(customer_ids)
                frame, complete = align_features(features, customer_ids)
        except Exception as exc:
            logger.exception("feature lookup failed")
            raise HTTPException(503, f"feature store lookup failed: {exc}") from exc
        if state.feature_store != "ready":
            state.feature_store, state.feature_store_error = "ready", None
        started = time.perf_counter()
        with telemetry.span("model predict", rows=int(complete.sum()), runtime=model.runtime):
            probabilities = (
                model.predict(to_model_frame(frame[complete], model))
                if complete.any()
                else np.empty(0)
            )
        if shadow is not None and complete.any():
            _shadow(
                telemetry.REQUEST_ID.get(), "customer_ids", model, probabilities,
                time.perf_counter() - started, shadow, to_model_frame(frame[complete], shadow),
            )  # fmt: skip
        metrics.observe_predictions(probabilities, "customer_ids")
        unknown = int((~complete).sum())
        if unknown:
            metrics.row_errors.labels(reason="unknown_customer_id").inc(unknown)
        return answers_by_id(customer_ids, complete.tolist(), labelled(probabilities, cutoff))

    _document_request_models(app)

    @app.get(
        "/metrics",
        tags=["probes"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus text exposition of the app's metrics."""
        payload, content_type = metrics.exposition()
        return Response(payload, media_type=content_type)

    return app
