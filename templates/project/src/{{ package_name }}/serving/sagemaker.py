"""SageMaker's inference container contract, next to ``/predict``.

SageMaker starts the image as ``docker run IMAGE serve`` and then talks to port 8080:

``GET  /ping``         200 once the champion model is loaded and warmed up, else 503
                       (SageMaker keeps the instance out of service until it is 200).
``POST /invocations``  score feature rows sent as

                       * ``application/json``: a list of ``{feature: value}`` objects, or
                         ``{"instances": [...]}`` / ``{"rows": [...]}`` holding objects or
                         lists of values in :data:`FEATURE_COLUMNS` order;
                       * ``text/csv``: one row per line, values in :data:`FEATURE_COLUMNS`
                         order, with or without that header line.

                       Answers ``{"predictions": [{"churn_probability", "churn"}, ...],
                       "model_name", "model_version", "threshold"}`` (JSON), or
                       ``probability,label`` lines when ``Accept: text/csv``. Bad input
                       gets 400 with ``{"error": ...}``; 503 while no model is loaded.

``serve`` (the console script, see ``__main__.sagemaker_serve``) binds 0.0.0.0:8080.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from .model import LoadedModel, model_input
from .schemas import MAX_BATCH_ROWS

SAGEMAKER_PORT = 8080
JSON = "application/json"
CSV = "text/csv"


class InvocationError(ValueError):
    """The payload cannot be scored; the message says why (answered with 400)."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=JSON)


def _value(raw: Any, name: str, dtype: str, row: int) -> int | float:
    """One feature value, checked against its dtype (ints must be whole numbers)."""
    if isinstance(raw, bool) or raw is None or raw == "":
        raise InvocationError(f"row {row}: {name} is missing or not a number")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise InvocationError(f"row {row}: {name}={raw!r} is not a number") from None
    if not math.isfinite(number):
        raise InvocationError(f"row {row}: {name}={raw!r} is not finite")
    if dtype.startswith("int"):
        if not number.is_integer():
            raise InvocationError(f"row {row}: {name}={raw!r} must be an integer")
        return int(number)
    return number


def rows_columns(records: list[Any], dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Build the model's typed input columns from objects or value lists (``dtypes`` order)."""
    if not records:
        raise InvocationError("no rows to score")
    if len(records) > MAX_BATCH_ROWS:
        raise InvocationError(f"{len(records)} rows; at most {MAX_BATCH_ROWS} per request")
    names = list(dtypes)
    columns: dict[str, list[int | float]] = {name: [] for name in names}
    for index, record in enumerate(records):
        if isinstance(record, Mapping):
            missing = [name for name in names if name not in record]
            if missing:
                raise InvocationError(f"row {index}: missing feature(s) {', '.join(missing)}")
            values = [record[name] for name in names]
        elif isinstance(record, list | tuple):
            if len(record) != len(names):
                raise InvocationError(
                    f"row {index}: {len(record)} values, expected {len(names)} ({', '.join(names)})"
                )
            values = list(record)
        else:
            raise InvocationError(f"row {index}: expected an object or a list of values")
        for name, raw in zip(names, values, strict=True):
            columns[name].append(_value(raw, name, dtypes[name], index))
    return {name: np.asarray(columns[name], dtype=dtypes[name]) for name in names}


def parse_json(body: bytes, dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Rows of a JSON payload: a list, or ``{"instances"|"rows": [...]}``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvocationError(f"invalid JSON: {exc}") from None
    if isinstance(payload, dict):
        keys = [key for key in ("instances", "rows") if key in payload]
        if len(keys) != 1:
            raise InvocationError('a JSON object needs exactly one of "instances" or "rows"')
        payload = payload[keys[0]]
    if not isinstance(payload, list):
        raise InvocationError("expected a list of rows")
    return rows_columns(payload, dtypes)


def parse_csv(body: bytes, dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Rows of a CSV payload (values in ``dtypes`` order; a header line is optional)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvocationError("CSV payload is not UTF-8") from None
    lines = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if lines and [cell.strip() for cell in lines[0]] == list(dtypes):
        lines = lines[1:]
    return rows_columns([[cell.strip() for cell in row] for row in lines], dtypes)


def create_sagemaker_router(
    get_model: Callable[[], LoadedModel | None],
    dtypes: Mapping[str, str],
    *,
    threshold: float,
    observe: Callable[[np.ndarray, str], None] | None = None,
) -> APIRouter:
    """``/ping`` and ``/invocations`` around the app's loaded model."""
    router = APIRouter(tags=["sagemaker"])

    @router.get("/ping")
    def ping() -> Response:
        """SageMaker health check: 200 once the model is loaded."""
        model = get_model()
        if model is None:
            return _json({"status": "loading"}, 503)
        return _json({"status": "ok", "model_name": model.name, "model_version": model.version})

    @router.post("/invocations")
    async def invocations(request: Request) -> Response:
        """Score JSON or CSV rows (see the module docstring)."""
        model = get_model()
        if model is None:
            return _json({"error": "model not loaded yet"}, 503)
        content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        body = await request.body()
        try:
            if content_type == CSV:
                columns = parse_csv(body, dtypes)
            elif content_type in (JSON, "application/jsonlines", ""):
                columns = parse_json(body, dtypes)
            else:
                return _json({"error": f"unsupported content type {content_type!r}"}, 415)
        except InvocationError as exc:
            return _json({"error": str(exc)}, 400)
        probabilities = model.predict(model_input(model, columns))
        if observe is not None:
            observe(probabilities, "invocations")
        labels = probabilities >= threshold
        if CSV in request.headers.get("accept", ""):
            lines = "".join(
                f"{p!r},{str(bool(label)).lower()}\n"
                for p, label in zip(probabilities.tolist(), labels.tolist(), strict=True)
            )
            return Response(lines, media_type=CSV)
        return _json(
            {
                "model_name": model.name,
                "model_version": model.version,
                "threshold": threshold,
                "predictions": [
                    {"churn_probability": p, "churn": label}
                    for p, label in zip(probabilities.tolist(), labels.tolist(), strict=True)
                ],
            }
        )

    return router
