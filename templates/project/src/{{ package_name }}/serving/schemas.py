"""Request and response models of the serving API, generated from ``schema.FEATURE_DTYPES``.

The rule for one feature value, shared by every route that scores rows (``/predict``,
the V2 protocol, SageMaker's ``/invocations``): a number (``true`` and ``"1"`` are not);
an ``int64`` feature takes an integer within int64 or a whole float up to 2**53 (JSON
Schema's "integer" includes ``2.0``; ``1.5`` is refused); a ``float64`` feature takes any
finite number (NaN/Infinity are refused). :func:`feature_value` applies it to one value
(V2 tensors, SageMaker rows); ``FeatureRow``, the strict ``TypedDict`` of ``/predict``
rows, states the same rule as pydantic types, so pydantic-core checks a batch in C and
rows stay plain dicts (one array or frame per batch, no model object per row); unknown
keys are refused. ``tests/test_api.py`` checks that both forms agree.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    create_model,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from ..schema import ENTITY_COLUMN, FEATURE_DTYPES, NULLABLE_FEATURES
from .outputs import USES_THRESHOLD, prediction_fields

MAX_BATCH_ROWS = int(os.environ.get("SERVING_MAX_BATCH", "1000"))
"""Most rows (or customer ids) accepted in one ``POST /predict``."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

EXACT_FLOAT_INT = 2**53
"""Whole floats beyond this are not exact integers (and may be rounded int64 bounds)."""


class FeatureValueError(ValueError):
    """A feature value the model cannot take; the message names the feature and why."""


def feature_value(raw: Any, name: str, dtype: str) -> int | float:
    """Return ``raw`` checked against feature ``name``'s ``dtype`` (an int for int features).

    Raises :class:`FeatureValueError` (``"<name>=<value> ..."``) when it breaks the rule of
    the module docstring.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise FeatureValueError(f"{name}={str(raw)[:40]!r} is not a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise FeatureValueError(f"{name}={raw!r} is not finite")
    if dtype.startswith("int"):
        if isinstance(raw, float):
            # Whole floats past 2**53 are not exact (JSON ints past int64 arrive as floats).
            if not raw.is_integer() or abs(raw) > EXACT_FLOAT_INT:
                raise FeatureValueError(f"{name}={raw!r} is not an integer")
            raw = int(raw)
        if not INT64_MIN <= raw <= INT64_MAX:
            raise FeatureValueError(f"{name}={raw} is outside the int64 range")
    return raw


def _whole(value: float) -> float:
    """Refuse a fractional float (``multiple_of=1`` lets tiny ones like 1e-42 through)."""
    if not value.is_integer():
        raise ValueError("Input should be a valid integer")
    return value


StrictInt64 = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
# Only floats reach the validator: JSON ints take the StrictInt64 branch, in C.
WholeFloat = Annotated[
    float, Strict(), Field(ge=-EXACT_FLOAT_INT, le=EXACT_FLOAT_INT), AfterValidator(_whole)
]
Int64Feature = Annotated[
    StrictInt64 | WholeFloat,
    WithJsonSchema({"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}),
]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
CustomerId = Annotated[
    Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
    | Annotated[float, Strict(), Field(ge=0, le=EXACT_FLOAT_INT), AfterValidator(_whole)],
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": INT64_MAX}),
]
"""A customer id: an int64 >= 0 (whole floats accepted, as JSON Schema's "integer" does)."""


def _field_type(name: str, dtype: str) -> Any:
    """The request type of feature ``name``; ``None`` also allowed for NULLABLE_FEATURES."""
    kind: Any
    if dtype.startswith("int"):
        kind = Int64Feature
    elif dtype.startswith("float"):
        kind = FiniteFloat
    elif dtype == "bool":
        kind = Annotated[bool, Strict()]
    elif dtype == "string":  # a category: text (unknown values score as no category)
        kind = Annotated[str, Strict(), Field(max_length=200)]
    else:
        raise ValueError(f"feature {name!r}: no request type for dtype {dtype!r}")
    return kind | None if name in NULLABLE_FEATURES else kind


def build_feature_row_type() -> Any:
    """Build the strict ``FeatureRow`` TypedDict: one required key per feature column."""
    fields = {name: _field_type(name, dtype) for name, dtype in FEATURE_DTYPES.items()}
    typed_dict: Any = TypedDict
    row = typed_dict("FeatureRow", fields)
    return with_config(ConfigDict(extra="forbid", strict=True, title="FeatureRow"))(row)


if TYPE_CHECKING:
    FeatureRow = dict[str, int | float]
else:
    FeatureRow = build_feature_row_type()


def _exactly_one_in_schema(schema: dict[str, Any]) -> None:
    """Say in the JSON schema what ``_exactly_one_input`` checks: one key, never null."""
    for name in ("customer_ids", "rows"):
        field = schema["properties"][name]
        field.update(next(s for s in field.pop("anyOf") if s.get("type") != "null"))
        field.pop("default", None)
    schema["oneOf"] = [{"required": ["customer_ids"]}, {"required": ["rows"]}]
    schema["examples"] = [
        {"customer_ids": [1, 2, 3]},
        {"rows": [{name: 1 for name in FEATURE_DTYPES}]},
    ]


class PredictRequest(BaseModel):
    """Either ``customer_ids`` (features read from the online store) or raw feature ``rows``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_in_schema)

    customer_ids: list[CustomerId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description=f"Customer ids ({ENTITY_COLUMN}) whose features are read from Feast.",
    )
    rows: list[FeatureRow] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="Feature rows, one object per customer, every feature required.",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        if (self.customer_ids is None) == (self.rows is None):
            raise ValueError("send exactly one of 'customer_ids' or 'rows'")
        if len(self.model_fields_set) != 1:
            raise ValueError("send exactly one of 'customer_ids' or 'rows' (not null)")
        return self


class _PredictionBase(BaseModel):
    """The outcome for one requested row or customer id."""

    customer_id: int | None = Field(default=None, description="Echoed for id requests.")


# The output fields of the task (:mod:`.outputs`), then the error of a failed row.
Prediction = create_model(
    "Prediction",
    __base__=_PredictionBase,
    __doc__=_PredictionBase.__doc__,
    **prediction_fields(),
    error=(str | None, Field(default=None, description="Why this row has no prediction.")),
)


class _PredictResponseBase(BaseModel):
    """Predictions in request order, with the registry identity of the model that made them."""

    model_name: str
    model_version: str


# The probability cutoff of the labels, when the task has one (binary), then the predictions.
_response_fields: dict[str, Any] = {"threshold": (float, ...)} if USES_THRESHOLD else {}
PredictResponse = create_model(
    "PredictResponse",
    __base__=_PredictResponseBase,
    __doc__=_PredictResponseBase.__doc__,
    **_response_fields,
    predictions=(list[Prediction], ...),  # type: ignore[valid-type]
)


class HealthResponse(BaseModel):
    """Liveness: the process answers."""

    status: str


class ReadyResponse(BaseModel):
    """Readiness: whether the champion model is loaded, and which one."""

    ready: bool
    model_name: str | None
    model_version: str | None
    model_alias: str
    feature_store: str
    runtime: str | None = None
    """``onnx`` or ``sklearn`` (SERVING_RUNTIME and the fallback), once loaded."""
    detail: str | None = None
