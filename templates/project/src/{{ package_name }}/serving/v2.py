"""The V2 / Open Inference Protocol endpoints, so KServe and Seldon clients can call the app.

``create_router`` returns an ``APIRouter`` the app includes next to ``/predict`` when the
serving platform speaks V2 (KServe, Seldon, the plain Kubernetes Deployment; see
:mod:`.routes`):

``GET  /v2``                       server metadata (name, version, extensions).
``GET  /v2/health/live``           200 while the process answers.
``GET  /v2/health/ready``          200 once the model is loaded, else 503.
``GET  /v2/models/{name}``         model metadata: versions, platform, input/output tensors.
``GET  /v2/models/{name}/ready``   200 when ``name`` is loaded, 503 while loading, 404 unknown.
``POST /v2/models/{name}/infer``   inference request in the V2 JSON tensor format.

An inference request carries the features as tensors, either one tensor per feature
column (named like the column, shape ``[n]`` or ``[n, 1]``; the layout MLServer's pandas
codec uses) or a single tensor of shape ``[n, len(feature_columns)]`` whose columns are in
``feature_columns`` order. ``data`` may be flat (row-major) or nested. The response holds
one tensor of shape ``[n]`` per output column of the task (:data:`.outputs.COLUMNS`):
binary ``churn_probability`` (FP64) and ``churn`` (BOOL); multiclass ``label`` (BYTES,
the class name) and ``probability_<class>`` (FP64) per class; regression ``prediction``
(FP64). A request may ask for a subset with ``outputs``. Errors answer
``{"error": "..."}`` (the app's one error shape, :mod:`.errors`) with status 400 (bad
request, malformed JSON included), 404 (unknown model) or 503 (not loaded), as the
protocol specifies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from .errors import documented_errors, error_response
from .model import LoadedModel, model_input
from .outputs import COLUMNS, model_scores, score_columns
from .schemas import MAX_BATCH_ROWS, FeatureValueError, feature_value

PROTOCOL_VERSION = "2"
SERVER_NAME = "churn-fastapi"
OUTPUT_TYPES = {"f": "FP64", "b": "BOOL", "O": "BYTES"}
"""V2 datatype of an output column by its numpy kind (see :func:`.outputs.score_columns`)."""

# V2 datatypes accepted for a feature of each pandas dtype kind.
_INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_FLOAT_TYPES = {"FP16", "FP32", "FP64"}
_ACCEPTED: dict[str, set[str]] = {"i": _INT_TYPES, "f": _INT_TYPES | _FLOAT_TYPES}
_V2_TYPE = {"i": "INT64", "f": "FP64"}


class V2Error(Exception):
    """A request the protocol answers with ``{"error": message}`` and ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RequestInput(BaseModel):
    """One input tensor of an inference request."""

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    """An output the client asks for (all of them when ``outputs`` is absent)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """The body of ``POST /v2/models/{name}/infer``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (InferenceRequest,)
"""Bodies read from the raw request: the app adds them to the OpenAPI schema."""


class ServerMetadata(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    """``GET /v2/health/live``."""

    live: bool


class ServerReady(BaseModel):
    """``GET /v2/health/ready``."""

    ready: bool


class TensorMetadata(BaseModel):
    """One input or output tensor of the model."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(BaseModel):
    """``GET /v2/models/{name}/ready``."""

    name: str
    ready: bool


class ResponseOutput(BaseModel):
    """One output tensor of an inference response."""

    name: str
    shape: list[int]
    datatype: str
    data: list[float | bool | str | None]


class InferenceResponse(BaseModel):
    """The body answering ``POST /v2/models/{name}/infer``."""

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        return [value for row in data for value in _flatten(row)]
    return data


def _dtype_kind(dtype: str) -> str:
    kind = np.dtype(dtype).kind
    if kind not in _ACCEPTED:
        raise ValueError(f"no V2 datatype for pandas dtype {dtype!r}")
    return kind


def _column(
    values: list[Any], name: str, datatype: str, dtype: str, *, matrix: bool = False
) -> np.ndarray:
    """Check one feature's values and return them as a typed array.

    The tensor's datatype must suit the feature (in a single ``[n, features]`` tensor,
    ``matrix``, every column shares one datatype, so integer features may arrive as FP);
    every value follows the rule every route shares (:func:`.schemas.feature_value`).
    """
    kind = _dtype_kind(dtype)
    accepted = _INT_TYPES | _FLOAT_TYPES if matrix else _ACCEPTED[kind]
    if datatype not in accepted:
        allowed = ", ".join(sorted(accepted))
        raise V2Error(f"input {name!r}: datatype {datatype} not accepted (allowed: {allowed})")
    try:
        checked = [feature_value(value, name, dtype) for value in values]
    except FeatureValueError as exc:
        raise V2Error(f"input {name!r}: {exc}") from None
    try:
        return np.asarray(checked, dtype=dtype)
    except OverflowError:
        raise V2Error(f"input {name!r}: value out of range for {dtype}") from None


def _rows(shape: list[int], name: str) -> tuple[int, int]:
    if any(size < 0 for size in shape):
        raise V2Error(f"input {name!r}: negative dimension in shape {shape}")
    rows = shape[0]
    columns = shape[1] if len(shape) == 2 else 1
    return rows, columns


def request_columns(
    request: InferenceRequest, feature_dtypes: Mapping[str, str], max_rows: int
) -> dict[str, np.ndarray]:
    """Turn the request's input tensors into the model's feature columns (typed, in order)."""
    columns = list(feature_dtypes)
    inputs = request.inputs
    if len(inputs) == 1 and len(columns) > 1:
        tensor = inputs[0]
        rows, width = _rows(tensor.shape, tensor.name)
        if len(tensor.shape) != 2 or width != len(columns):
            raise V2Error(
                f"input {tensor.name!r}: a single input tensor must have shape "
                f"[n, {len(columns)}] (columns: {', '.join(columns)}); got {tensor.shape}"
            )
        values = _flatten(tensor.data)
        if len(values) != rows * width:
            raise V2Error(f"input {tensor.name!r}: {len(values)} values for shape {tensor.shape}")
        per_column = {name: values[i::width] for i, name in enumerate(columns)}
        datatypes = dict.fromkeys(columns, tensor.datatype)
        count, matrix = rows, True
    else:
        matrix = False
        by_name = {tensor.name: tensor for tensor in inputs}
        if len(by_name) != len(inputs):
            raise V2Error("duplicate input names")
        unknown = sorted(set(by_name) - set(columns))
        missing = [name for name in columns if name not in by_name]
        if unknown or missing:
            raise V2Error(
                "inputs must be one tensor per feature: "
                + "; ".join(
                    part
                    for part in (
                        f"unknown {', '.join(unknown)}" if unknown else "",
                        f"missing {', '.join(missing)}" if missing else "",
                    )
                    if part
                )
            )
        counts = set()
        per_column, datatypes = {}, {}
        for name in columns:
            tensor = by_name[name]
            rows, width = _rows(tensor.shape, name)
            if width != 1:
                raise V2Error(f"input {name!r}: shape must be [n] or [n, 1]; got {tensor.shape}")
            values = _flatten(tensor.data)
            if len(values) != rows:
                raise V2Error(f"input {name!r}: {len(values)} values for shape {tensor.shape}")
            per_column[name], datatypes[name] = values, tensor.datatype
            counts.add(rows)
        if len(counts) != 1:
            raise V2Error(f"inputs have different row counts: {sorted(counts)}")
        count = counts.pop()
    if count < 1 or count > max_rows:
        raise V2Error(f"a request holds 1 to {max_rows} rows; got {count}")
    return {
        name: _column(per_column[name], name, datatypes[name], feature_dtypes[name], matrix=matrix)
        for name in columns
    }


def _error(message: str, status: int) -> Response:
    return error_response(status, message)


def create_router(
    get_model: Callable[[], LoadedModel | None],
    feature_dtypes: Mapping[str, str],
    *,
    threshold: float,
    max_rows: int = MAX_BATCH_ROWS,
    observe: Callable[[np.ndarray, str], None] | None = None,
) -> APIRouter:
    """Build the V2 protocol router.

    ``get_model`` returns the currently loaded model (``None`` while loading);
    ``feature_dtypes`` maps each feature column to its pandas dtype, in model input order;
    ``threshold`` turns binary probabilities into labels; ``observe`` (e.g. the app's
    prediction metrics) receives every batch of scores with the source ``"v2"``.
    """
    router = APIRouter(prefix="/v2", tags=["v2 protocol"])
    kinds = {name: _dtype_kind(dtype) for name, dtype in feature_dtypes.items()}
    empty = score_columns(model_scores([], 0), threshold)
    output_types = {name: OUTPUT_TYPES[empty[name].dtype.kind] for name in COLUMNS}

    def _model(name: str) -> LoadedModel:
        model = get_model()
        if model is None:
            raise V2Error("model not loaded yet", 503)
        if name != model.name:
            raise V2Error(f"unknown model {name!r}; this server serves {model.name!r}", 404)
        return model

    @router.get("", response_model=ServerMetadata)
    def server_metadata() -> Response:
        """Server metadata: name, version and supported extensions."""
        return JSONResponse({"name": SERVER_NAME, "version": PROTOCOL_VERSION, "extensions": []})

    @router.get("/health/live", response_model=ServerLive)
    def live() -> Response:
        """Server liveness: the process answers."""
        return JSONResponse({"live": True})

    @router.get(
        "/health/ready", response_model=ServerReady, responses={503: {"model": ServerReady}}
    )
    def ready() -> Response:
        """Server readiness: 200 once the model is loaded, else 503."""
        is_ready = get_model() is not None
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @router.get(
        "/models/{name}", response_model=ModelMetadata, responses=documented_errors(404, 503)
    )
    def model_metadata(name: str) -> Response:
        """Model metadata: name, versions, platform and the input/output tensors."""
        try:
            model = _model(name)
        except V2Error as exc:
            return _error(exc.message, exc.status)
        return JSONResponse(
            {
                "name": model.name,
                "versions": [model.version],
                "platform": "onnxruntime" if model.runtime == "onnx" else "mlflow-sklearn",
                "inputs": [
                    {"name": column, "datatype": _V2_TYPE[kind], "shape": [-1]}
                    for column, kind in kinds.items()
                ],
                "outputs": [
                    {"name": name, "datatype": datatype, "shape": [-1]}
                    for name, datatype in output_types.items()
                ],
            }
        )

    @router.get(
        "/models/{name}/ready", response_model=ModelReady, responses=documented_errors(404, 503)
    )
    def model_ready(name: str) -> Response:
        """Model readiness: 200 when loaded, 503 while loading, 404 for another name."""
        try:
            _model(name)
        except V2Error as exc:
            return _error(exc.message, exc.status)
        return JSONResponse({"name": name, "ready": True})

    @router.post(
        "/models/{name}/infer",
        response_model=InferenceResponse,
        responses=documented_errors(400, 404, 413, 503, 504),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/InferenceRequest"}
                    }
                },
            }
        },
    )
    async def infer(name: str, http_request: Request) -> Response:
        """Score the request's feature tensors with the champion model."""
        body = await http_request.body()
        try:
            model = _model(name)
            try:
                request = InferenceRequest.model_validate_json(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise V2Error(f"invalid inference request: {where}: {first['msg']}") from None
            wanted = [output.name for output in request.outputs or []]
            unknown = sorted(set(wanted) - set(COLUMNS))
            if unknown:
                raise V2Error(f"unknown output(s) {', '.join(unknown)}")
            columns = request_columns(request, feature_dtypes, max_rows)
        except V2Error as exc:
            return _error(exc.message, exc.status)
        scores = await run_in_threadpool(model.predict, model_input(model, columns))
        if observe is not None:
            observe(scores, "v2")
        tensors = {
            name: {
                "name": name,
                "shape": [len(values)],
                "datatype": output_types[name],
                "data": values.tolist(),
            }
            for name, values in score_columns(scores, threshold).items()
        }
        response: dict[str, Any] = {
            "model_name": model.name,
            "model_version": model.version,
            "outputs": [tensors[name] for name in (wanted or list(tensors))],
        }
        if request.id is not None:
            response["id"] = request.id
        return JSONResponse(response)

    return router
