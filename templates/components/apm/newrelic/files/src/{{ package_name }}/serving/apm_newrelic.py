"""The New Relic APM agent in the serving API (``apm=newrelic``), configured by environment.

:mod:`.routes` calls :func:`start` when it is imported, before :mod:`.app` builds the app:
the agent hooks Starlette's constructor, so every request to the app is a web transaction
named after its handler
(``WebTransaction/Function/<package>.serving.app:create_app.<locals>.predict``), with
the thread-pool work, errors and the response time under it.

Offline by default: ``NEW_RELIC_DEVELOPER_MODE=true`` (set here when the environment does
not say, and in ``.env.example``, the Makefile and compose) makes the agent connect and
harvest to its in-process fake collector: nothing leaves the machine, no license key is
needed, and the agent does not ask the cloud metadata services where it runs. Going
online is one setting in ``.env``: ``NEW_RELIC_DEVELOPER_MODE=false``, next to
``NEW_RELIC_LICENSE_KEY`` (only there, never in a file under version control). Every
other ``NEW_RELIC_*`` variable of the agent is honoured (``NEW_RELIC_APP_NAME``,
``NEW_RELIC_CONFIG_FILE`` for a ``newrelic.ini``, ``NEW_RELIC_LOG``...).
``NEW_RELIC_ENABLED=false`` leaves the agent out of the process.
"""

from __future__ import annotations

import logging
import os

DEFAULT_APP_NAME = f"{__name__.partition('.')[0]} serving"
_FALSE = {"0", "false", "no", "off"}
CLOUD_VENDORS = ("aws", "azure", "azurefunction", "azureappservice", "gcp", "pcf")

logger = logging.getLogger(__name__)


def enabled() -> bool:
    """False when ``NEW_RELIC_ENABLED`` says so (the agent then stays out of the process)."""
    return os.environ.get("NEW_RELIC_ENABLED", "true").strip().lower() not in _FALSE


def developer_mode() -> bool:
    """True unless ``NEW_RELIC_DEVELOPER_MODE`` is false (offline, the default)."""
    return os.environ.get("NEW_RELIC_DEVELOPER_MODE", "true").strip().lower() not in _FALSE


def start() -> bool:
    """Initialize the agent from the environment (idempotent); False when it stays out.

    It stays out when ``NEW_RELIC_ENABLED`` is false, and (with one error line in the log)
    when developer mode is off but no ``NEW_RELIC_LICENSE_KEY`` is set: the app serves
    either way, and an agent without a key never tries the real collector.
    """
    if not enabled():
        return False
    offline = developer_mode()
    if not offline and not os.environ.get("NEW_RELIC_LICENSE_KEY", "").strip():
        logger.error(
            "New Relic agent not started: NEW_RELIC_DEVELOPER_MODE=false needs"
            " NEW_RELIC_LICENSE_KEY in .env"
        )
        return False
    # The agent reads its settings from the environment when initialize() runs.
    os.environ.setdefault("NEW_RELIC_APP_NAME", DEFAULT_APP_NAME)
    os.environ["NEW_RELIC_DEVELOPER_MODE"] = "true" if offline else "false"
    import newrelic.agent
    from newrelic.core.config import global_settings

    newrelic.agent.initialize()
    if offline:
        # The agent asks the cloud metadata services (169.254.169.254: AWS, Azure, GCP)
        # where it runs when it connects, even to its fake collector; offline, it does not.
        # (A newrelic.ini may set these too: NEW_RELIC_CONFIG_FILE.)
        utilization = global_settings().utilization
        for vendor in CLOUD_VENDORS:
            setattr(utilization, f"detect_{vendor}", False)
    return True
