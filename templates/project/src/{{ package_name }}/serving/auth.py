"""API-key authentication of ``POST /predict`` (a FastAPI dependency).

Enabled when ``SERVING_API_KEY`` is set (in ``.env``) when the app is created: requests
must then send the key in the ``X-API-Key`` header, else they get 401. Without the
variable the API is open, as in a single-user setup, and its OpenAPI schema advertises
no key. ``/health``, ``/ready`` and ``/metrics`` never require the key (probes and
Prometheus must reach them). Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader

# Names of a header and a variable, no secret values:
# pragma: allowlist nextline secret
API_KEY_HEADER = "X-API-Key"
# pragma: allowlist nextline secret
API_KEY_ENV = "SERVING_API_KEY"


def configured_key() -> str | None:
    """The key requests must present (``SERVING_API_KEY``), or None when authentication is off."""
    return os.environ.get(API_KEY_ENV) or None


def api_key_dependencies(expected: str | None) -> list[Any]:
    """Route dependencies checking ``X-API-Key`` against ``expected`` (none when it is None)."""
    if expected is None:
        return []
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Serving API key")
    expected_bytes = expected.encode()

    async def require_api_key(presented: str | None = Security(header)) -> None:
        """Reject the request with 401 unless it carries the configured key."""
        if presented is None or not hmac.compare_digest(presented.encode(), expected_bytes):
            raise HTTPException(
                status_code=401,
                detail=f"missing or invalid API key (send it in the {API_KEY_HEADER} header)",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )

    return [Security(require_api_key)]
