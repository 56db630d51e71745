"""``python -m <package>.serving``: run the API with uvicorn on the configured host and port."""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from .. import telemetry
from ..config import load_settings


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def server_options() -> dict[str, Any]:
    """uvicorn settings shared by ``main`` and the fault tests (which serve a test model).

    The HTTP protocol is :class:`.protocol.HeaderTimeoutProtocol` (httptools with a
    deadline for request headers, ``SERVING_HEADER_TIMEOUT``); ``SERVING_KEEP_ALIVE``
    (default 5 s) closes idle keep-alive connections; ``SERVING_ACCESS_LOG=1`` turns
    uvicorn's per-request access log on (off by default: /metrics counts requests).
    On SIGTERM uvicorn stops accepting, finishes in-flight requests, then exits.
    """
    return {
        # uvloop when importable (uvicorn[standard]).
        "loop": "auto",
        "http": f"{__package__}.protocol:HeaderTimeoutProtocol",
        "access_log": os.environ.get("SERVING_ACCESS_LOG", "0").lower() in {"1", "true", "yes"},
        "timeout_keep_alive": _env_int("SERVING_KEEP_ALIVE", 5),
    }


def run(host: str, port: int) -> None:
    """Serve ``create_app()`` on ``host``:``port`` (the entry points choose the address).

    ``SERVING_WORKERS`` (default 1) sets the number of worker processes: each loads its
    own copy of the model (~RSS each) and keeps its own Prometheus counters, so scrape
    them per process or keep one worker per container and scale containers instead.
    See :func:`server_options` for the connection settings.
    """
    level = os.environ.get("LOG_LEVEL", "info").upper()
    # ECS JSON on stderr (LOG_FORMAT=text: plain lines); uvicorn's loggers propagate to it.
    telemetry.configure_logging("serving", level)
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=_env_int("SERVING_WORKERS", 1),
        log_level=level.lower(),
        log_config=None,
        **server_options(),
    )


def main(argv: list[str] | None = None) -> None:
    """Serve ``create_app()`` on ``SERVING_HOST``:``SERVING_PORT`` (see :func:`run`)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        raise SystemExit(f"usage: python -m {__package__}; got {' '.join(args)}")
    settings = load_settings()
    run(settings.serving_host, settings.serving_port)


if __name__ == "__main__":
    main()
