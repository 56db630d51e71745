"""SageMaker's inference container contract, next to ``/predict`` (serving_platform=sagemaker).

SageMaker starts the image as ``docker run IMAGE serve`` and then talks to port 8080:

``GET  /ping``         200 once the champion model is loaded and warmed up, else 503
                       (SageMaker keeps the instance out of service until it is 200).
``POST /invocations``  score feature rows sent as

                       * ``application/json``: a list of ``{feature: value}`` objects, or
                         ``{"instances": [...]}`` / ``{"rows": [...]}`` holding objects or
                         lists of values in :data:`FEATURE_COLUMNS` order;
                       * ``text/csv``: one row per line, values in :data:`FEATURE_COLUMNS`
                         order, with or without that header line.

                       Answers ``{"predictions": [...], "model_name",
                       "model_version"}`` (JSON; the rows and ``threshold`` of
                       ``/predict``'s answer, :mod:`.outputs`), or one line a row of
                       the task's output columns (:data:`.outputs.COLUMNS`, no header:
                       binary ``probability,label``, multiclass ``label,p_1,...,p_k``,
                       regression ``prediction``) when ``Accept: text/csv``. Bad input
                       gets 400 with ``{"error": ...}``; 503 while no model is loaded.

JSON values follow the feature-value rule of ``/predict`` and V2 (:mod:`.schemas`: an int
feature a whole number within int64, a float feature finite); a row object holds exactly
the feature keys. The OpenAPI schema of the
body (:func:`invocation_body_schema`) says exactly that. CSV cells are parsed as numbers
under the same rules.

``serve`` (the console script, :func:`serve`) binds 0.0.0.0:8080.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .__main__ import run
from .errors import documented_errors, error_response
from .model import LoadedModel, model_input
from .outputs import USES_THRESHOLD, labelled, score_columns
from .schemas import (
    INT64_MAX,
    INT64_MIN,
    MAX_BATCH_ROWS,
    FeatureValueError,
    PredictResponse,
    feature_value,
)

SAGEMAKER_PORT = 8080
JSON = "application/json"
CSV = "text/csv"


REQUEST_MODELS: tuple[type[BaseModel], ...] = ()
"""No ``$ref`` bodies: ``/invocations`` states its body inline (:func:`invocation_body_schema`)."""


class InvocationError(ValueError):
    """The payload cannot be scored; the message says why (answered with 400)."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=JSON)


def _value(raw: Any, name: str, dtype: str, row: int, text: bool) -> int | float:
    """One feature value: a CSV cell (``text``) is parsed as a number first, then every
    value is checked by the rule every route shares (:func:`.schemas.feature_value`).
    """
    if text and isinstance(raw, str):
        if raw == "":
            raise InvocationError(f"row {row}: {name} is missing")
        try:
            raw = int(raw) if dtype.startswith("int") and raw.lstrip("+-").isdigit() else float(raw)
        except ValueError:
            raise InvocationError(f"row {row}: {name}={raw[:40]!r} is not a number") from None
    try:
        return feature_value(raw, name, dtype)
    except FeatureValueError as exc:
        raise InvocationError(f"row {row}: {exc}") from None


def rows_columns(
    records: list[Any], dtypes: Mapping[str, str], *, text: bool = False
) -> dict[str, np.ndarray]:
    """Build the model's typed input columns from objects or value lists (``dtypes`` order).

    ``text``: the values are CSV cells, parsed as numbers (JSON values must be numbers).
    """
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
            if len(record) != len(names):
                unknown = sorted(str(key)[:40] for key in record if key not in dtypes)
                raise InvocationError(f"row {index}: unknown key(s) {', '.join(unknown[:5])}")
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
            columns[name].append(_value(raw, name, dtypes[name], index, text))
    return {name: np.asarray(columns[name], dtype=dtypes[name]) for name in names}


def parse_json(body: bytes, dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Rows of a JSON payload: a list, or ``{"instances"|"rows": [...]}``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvocationError(f"invalid JSON: {exc}") from None
    if isinstance(payload, dict):
        keys = [key for key in ("instances", "rows") if key in payload]
        if len(keys) != 1 or len(payload) != 1:
            raise InvocationError('a JSON object holds exactly one key, "instances" or "rows"')
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
    try:
        lines = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise InvocationError(f"invalid CSV: {exc}") from None
    if lines and [cell.strip() for cell in lines[0]] == list(dtypes):
        lines = lines[1:]
    return rows_columns([[cell.strip() for cell in row] for row in lines], dtypes, text=True)


def invocation_body_schema(dtypes: Mapping[str, str]) -> dict[str, Any]:
    """The OpenAPI request body of ``/invocations``: exactly what :func:`parse_json` accepts."""

    def value(dtype: str) -> dict[str, Any]:
        if dtype.startswith("int"):
            return {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
        return {"type": "number"}

    row_object = {
        "type": "object",
        "properties": {name: value(dtype) for name, dtype in dtypes.items()},
        "required": list(dtypes),
        "additionalProperties": False,
    }
    row_values = {
        "type": "array",
        "prefixItems": [value(dtype) for dtype in dtypes.values()],
        "items": False,
        "minItems": len(dtypes),
        "maxItems": len(dtypes),
        "description": f"values in this order: {', '.join(dtypes)}",
    }
    rows = {
        "type": "array",
        "items": {"anyOf": [row_object, row_values]},
        "minItems": 1,
        "maxItems": MAX_BATCH_ROWS,
    }
    wrapped = [
        {
            "type": "object",
            "properties": {key: rows},
            "required": [key],
            "additionalProperties": False,
        }
        for key in ("instances", "rows")
    ]
    return {
        "required": True,
        "content": {
            JSON: {"schema": {"anyOf": [rows, *wrapped]}},
            CSV: {
                "schema": {
                    "type": "string",
                    "description": f"one row per line: {','.join(dtypes)} (header optional)",
                }
            },
        },
    }


def csv_lines(scores: np.ndarray, threshold: float) -> str:
    """The CSV answer: a line a row, the task's output columns (:data:`.outputs.COLUMNS`).

    Numbers as Python's ``repr`` (round-trips exactly), booleans ``true``/``false``.
    """
    columns = [values.tolist() for values in score_columns(scores, threshold).values()]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for row in zip(*columns, strict=True):
        writer.writerow(_cell(value) for value in row)
    return text.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


class PingResponse(BaseModel):
    """``/ping``: ``ok`` with the model's identity once loaded, else ``loading``."""

    status: str
    model_name: str | None = None
    model_version: str | None = None


def create_router(
    get_model: Callable[[], LoadedModel | None],
    dtypes: Mapping[str, str],
    *,
    threshold: float,
    observe: Callable[[np.ndarray, str], None] | None = None,
) -> APIRouter:
    """``/ping`` and ``/invocations`` around the app's loaded model."""
    router = APIRouter(tags=["sagemaker"])

    @router.get("/ping", response_model=PingResponse, responses={503: {"model": PingResponse}})
    def ping() -> Response:
        """SageMaker health check: 200 once the model is loaded."""
        model = get_model()
        if model is None:
            return _json({"status": "loading"}, 503)
        return _json({"status": "ok", "model_name": model.name, "model_version": model.version})

    @router.post(
        "/invocations",
        response_model=PredictResponse,
        responses={
            200: {"content": {CSV: {"schema": {"type": "string"}}}},
            **documented_errors(400, 413, 415, 503, 504),
        },
        openapi_extra={"requestBody": invocation_body_schema(dtypes)},
    )
    async def invocations(request: Request) -> Response:
        """Score JSON or CSV rows (see the module docstring)."""
        model = get_model()
        if model is None:
            return error_response(503, "model not loaded yet")
        content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        body = await request.body()
        try:
            if content_type == CSV:
                columns = parse_csv(body, dtypes)
            elif content_type in (JSON, "application/jsonlines", ""):
                columns = parse_json(body, dtypes)
            else:
                return error_response(
                    415, f"unsupported content type {content_type[:60]!r}; send {JSON} or {CSV}"
                )
        except InvocationError as exc:
            return error_response(400, str(exc))
        scores = model.predict(model_input(model, columns))
        if observe is not None:
            observe(scores, "invocations")
        if CSV in request.headers.get("accept", ""):
            return Response(csv_lines(scores, threshold), media_type=CSV)
        return _json(
            {
                "model_name": model.name,
                "model_version": model.version,
                **({"threshold": threshold} if USES_THRESHOLD else {}),
                "predictions": labelled(scores, threshold),
            }
        )

    return router


def serve() -> None:
    """The ``serve`` console script SageMaker runs (``docker run IMAGE serve``).

    The app on 0.0.0.0:8080: SageMaker's container contract listens on every interface
    inside the container and sends ``/ping`` and ``/invocations`` to that port.
    """
    run(host="0.0.0.0", port=SAGEMAKER_PORT)  # nosec B104
