"""``python -m <package>.serving``: run the API with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import os

import uvicorn

from ..config import load_settings


def main() -> None:
    """Serve ``create_app()`` on ``SERVING_HOST``:``SERVING_PORT`` with one worker."""
    level = os.environ.get("LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    uvicorn.run(
        f"{__package__}.app:create_app",
        factory=True,
        host=settings.serving_host,
        port=settings.serving_port,
        workers=1,
        log_level=level.lower(),
    )


if __name__ == "__main__":
    main()
