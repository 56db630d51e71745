"""The one error shape of every serving endpoint, and the handlers that produce it.

Every non-2xx answer, from every route and every layer (FastAPI handlers, the ASGI
middlewares, the HTTP protocol's header timeout), is a JSON object::

    {"error": "<one line: what was wrong, and what is allowed>"}

Validation failures (422) add ``n_errors`` and the first ``detail`` entries (``loc``,
``msg``, ``type``). The V2 protocol and SageMaker clients read ``error`` too, so one
shape serves every caller. No answer ever carries a traceback: an unexpected exception
is logged and answered ``500 {"error": "internal error"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

logger = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 20
JSON_MEDIA_TYPE = "application/json"


class BodyTooLarge(Exception):
    """Raised into the app while it reads a body past SERVING_MAX_BODY_BYTES (see .limits)."""


class FieldError(BaseModel):
    """One validation error: where (``loc``), what (``msg``) and its pydantic ``type``."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: str = Field(description="What was wrong, in one line.")
    n_errors: int | None = Field(default=None, description="Validation errors found (422).")
    detail: list[FieldError] | None = Field(
        default=None, description=f"The first {MAX_REPORTED_ERRORS} validation errors (422)."
    )


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid API key",
    404: "Unknown model",
    408: "Request headers not received in time",
    413: "Body larger than SERVING_MAX_BODY_BYTES",
    415: "Unsupported content type",
    422: "Invalid input",
    503: "Model not loaded yet, or the feature store is unreachable",
    504: "No answer within SERVING_REQUEST_TIMEOUT",
}


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: each status answered with :class:`ErrorResponse`."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


def error_body(message: str, **extra: Any) -> bytes:
    """The serialized error shape (``extra``: ``n_errors``/``detail`` for validation)."""
    return orjson.dumps({"error": message, **extra})


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """An error answer: ``status`` with the error shape, pre-serialized by orjson."""
    return Response(error_body(message, **extra), status, headers, media_type=JSON_MEDIA_TYPE)


async def send_error(
    send: Send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send an error answer from ASGI middleware (no Request/Response objects needed)."""
    body = error_body(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _is_union_member(part: str | int) -> bool:
    """Whether a ``loc`` part names a member of a union type, not a field.

    A value checked against ``int | whole float`` fails once per member, each error's
    ``loc`` ending in the member's tag (``constrained-int``, ``function-after[...]``);
    field names are identifiers, so a tag is told apart by its ``-`` or ``[``.
    """
    return isinstance(part, str) and ("-" in part or "[" in part)


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"loc", "msg", "type"}``, one per field.

    ``loc`` leaves out ``body`` and union members' tags; of the errors a union gives for
    one value, the first (the strict ``int`` member's, for an int feature) is kept.
    """
    found: dict[tuple[str | int, ...], dict[str, Any]] = {}
    for error in errors:
        loc = tuple(
            part
            for part in error.get("loc", ())
            if part != "body" and not _is_union_member(part)
        )
        found.setdefault(
            loc,
            {
                "loc": list(loc),
                "msg": str(error.get("msg", "invalid")),
                "type": str(error.get("type", "value_error")),
            },
        )
    return list(found.values())


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line naming the first validation errors (``rows.0.tenure_months: ...``)."""
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location or 'body'}: {error['msg']}")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def invalid_input(errors: list[Any]) -> Response:
    """422 with the validation errors in the error shape (inputs are never echoed)."""
    fields = field_errors(errors)
    return error_response(
        422,
        validation_message(fields),
        n_errors=len(fields),
        detail=fields[:MAX_REPORTED_ERRORS],
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, validation errors and unexpected exceptions in the error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_failed(_: Request, exc: RequestValidationError) -> Response:
        return invalid_input(list(exc.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BodyTooLarge):  # answered 413 by BodyLimitMiddleware
            return error_response(413, "request body too large")
        logger.error(
            "%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc
        )
        return error_response(500, "internal error")
