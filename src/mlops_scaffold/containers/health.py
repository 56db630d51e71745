"""Wait for a compose project's containers to become healthy, through the Docker API.

docker-compose 1.29's ``up -d`` returns once containers are created; this polls their
health status (``State.Health.Status``) until every container with a healthcheck is
``healthy`` and every other one is running, and fails early, with the container's last
health-check output and log lines, when one turns ``unhealthy`` or exits.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .engine import ContainerEngineError, Log, _silent

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class ServiceHealth:
    """One container's state as the poll last saw it."""

    service: str
    state: str
    health: str | None

    @property
    def ready(self) -> bool:
        """Running, and healthy when it has a healthcheck."""
        return self.state == "running" and self.health in {None, "healthy"}


def _describe(container: Any) -> ServiceHealth:
    container.reload()
    state = container.attrs.get("State", {})
    health = state.get("Health")
    service = str(container.labels.get(SERVICE_LABEL, container.name))
    return ServiceHealth(service, str(state.get("Status", "")), health and health.get("Status"))


def _failure_detail(container: Any) -> str:
    state = container.attrs.get("State", {})
    probes = (state.get("Health") or {}).get("Log") or []
    last_probe = str(probes[-1].get("Output", "")).strip() if probes else ""
    logs = container.logs(tail=15).decode(errors="replace").strip()
    parts = [f"exit code {state.get('ExitCode')}" if state.get("Status") == "exited" else ""]
    if last_probe:
        parts.append(f"last healthcheck output: {last_probe}")
    if logs:
        parts.append("last log lines:\n" + logs)
    return "; ".join(part for part in parts if part)


def wait_healthy(
    engine: Any,
    project: str,
    *,
    timeout: float = 180.0,
    log: Log = _silent,
    running_only: Collection[str] = (),
    may_recover: Collection[str] = (),
) -> dict[str, float]:
    """Seconds until each service of compose ``project`` was ready; raise on failure.

    Services in ``running_only`` count as ready once running, whatever their health
    (one that cannot be healthy yet, e.g. serving before a model exists). For services
    in ``may_recover``, ``unhealthy`` is not final: the next passing probe makes them
    healthy again, so the poll goes on until ``timeout``.
    """
    started = time.monotonic()
    ready_at: dict[str, float] = {}
    last: dict[str, str] = {}
    while True:
        containers = engine.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={project}"}
        )
        if not containers:
            raise ContainerEngineError(f"compose project {project!r} has no containers")
        for container in containers:
            seen = _describe(container)
            summary = f"{seen.state}/{seen.health or 'no healthcheck'}"
            if last.get(seen.service) != summary:
                log(f"{seen.service}: {summary}")
                last[seen.service] = summary
            unhealthy = seen.health == "unhealthy" and seen.service not in may_recover
            if seen.state in {"exited", "dead"} or unhealthy:
                raise ContainerEngineError(
                    f"service {seen.service} is {seen.health or seen.state}: "
                    + _failure_detail(container)
                )
            if seen.ready or (seen.state == "running" and seen.service in running_only):
                ready_at.setdefault(seen.service, time.monotonic() - started)
            else:
                ready_at.pop(seen.service, None)
        if len(ready_at) == len(containers):
            return ready_at
        if time.monotonic() - started > timeout:
            waiting = sorted(set(last) - set(ready_at))
            raise ContainerEngineError(
                f"not healthy after {timeout:.0f}s: "
                + ", ".join(f"{name} ({last[name]})" for name in waiting)
            )
        time.sleep(1.0)
