"""``python -m <package>.serving``: run the API with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from ..config import load_settings
from .sagemaker import SAGEMAKER_PORT


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def main(argv: list[str] | None = None) -> None:
    """Serve ``create_app()`` on ``SERVING_HOST``:``SERVING_PORT``.

    ``SERVING_WORKERS`` (default 1) sets the number of worker processes: each loads its
    own copy of the model (~RSS each) and keeps its own Prometheus counters, so scrape
    them per process or keep one worker per container and scale containers instead.
    ``SERVING_ACCESS_LOG=1`` turns uvicorn's per-request access log on.

    ``serve`` as the only argument (how SageMaker starts a container) binds 0.0.0.0:8080,
    the address SageMaker sends ``/ping`` and ``/invocations`` to.
    """
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["serve"]):
        raise SystemExit(f"usage: python -m {__package__} [serve]; got {' '.join(args)}")
    level = os.environ.get("LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    sagemaker = args == ["serve"]
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host="0.0.0.0" if sagemaker else settings.serving_host,
        port=SAGEMAKER_PORT if sagemaker else settings.serving_port,
        workers=_env_int("SERVING_WORKERS", 1),
        log_level=level.lower(),
        # uvloop and httptools (installed with uvicorn[standard]) when importable.
        loop="auto",
        http="auto",
        # Off by default: a log line per request is paid on every call; /metrics counts them.
        access_log=os.environ.get("SERVING_ACCESS_LOG", "0").lower() in {"1", "true", "yes"},
        timeout_keep_alive=_env_int("SERVING_KEEP_ALIVE", 5),
    )


def sagemaker_serve() -> None:
    """The ``serve`` console script SageMaker runs: the API on 0.0.0.0:8080."""
    main(["serve"])


if __name__ == "__main__":
    main()
