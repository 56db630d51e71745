"""Verify a generated project in containers: build, ``up``, the project's checks, ``down -v``.

``verify PROJECT --runtime docker`` and ``smoke --runtime docker`` end here. The steps:

1. engine       ``$DOCKER_HOST`` when it answers, else the private dockerd of
                :mod:`mlops_scaffold.containers` (started here, stopped by PID at the end)
2. base images  the images the project pulls: present, or local stand-ins (no registry)
3. build        ``compose build`` (Compose v2 ``docker compose`` if present, else
                ``docker-compose`` 1.29); image sizes in the detail
4. up           ``compose up -d`` on free 127.0.0.1 ports, a unique project name
5. healthy      Docker health status of every service (serving only needs to run: it
                cannot be ready before a champion model exists)
6. the project's ``make verify-stack`` on the published ports: its own steps (the
                pipeline on the host against the stack's MLflow, whose Feast store and
                reports are bind-mounted into the serving container; champion; the API's
                predictions, errors and metrics; Prometheus scraping it) join the report.
                This module knows no model, route or payload of the project.
7. serving healthy  Docker health status of the serving container, now that it has a model
8. down         ``compose down -v``, always: on failure, on Ctrl-C and on SIGTERM

A step that fails ends the run (logs of failed services are printed) and is reported;
environment problems (no dockerd, not root, no compose CLI) raise ScaffoldError subclasses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import ContainerEngineError, ProjectError, ScaffoldError, ToolMissingError
from .report import OutputSink, Step, VerifyReport, read_report_steps, run_streaming

COMPOSE_FILE = "docker-compose.yml"
SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"
# Host ports the compose file reads (``${NAME:-default}``), chosen free for each run.
PORT_VARIABLES = {
    "mlflow": "MLFLOW_PORT",
    "serving": "SERVING_PORT",
    "prometheus": "PROMETHEUS_PORT",
}
MODEL_LOAD_RETRY_SECONDS = "2"
STACK_REPORT = "reports/verify-stack.json"
LOG_TAIL = 40
# Services that cannot be healthy before the pipeline registered a champion model.
MODEL_SERVICES = ("serving",)


class StepFailed(Exception):
    """A step ran and failed; its message goes into the report."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds each waiting step may take."""

    build: float = 1800.0
    healthy: float = 240.0
    pipeline: float = 1200.0
    serving: float = 240.0
    prometheus: float = 90.0
    down: float = 180.0


@dataclass
class _Run:
    """State of one docker verification (what ``finally`` must undo)."""

    project: Path
    sink: OutputSink
    name: str
    ports: dict[str, int] = field(default_factory=dict)
    docker_host: str = ""
    engine: Any = None
    stop_private_engine: bool = False
    compose: list[str] = field(default_factory=list)
    stack_started: bool = False
    steps: list[Step] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Environment of compose commands: engine, project name, ports, fast model retry."""
        env = dict(os.environ)
        env.update(
            {
                "DOCKER_HOST": self.docker_host,
                "COMPOSE_PROJECT_NAME": self.name,
                "MODEL_LOAD_RETRY_SECONDS": MODEL_LOAD_RETRY_SECONDS,
                # docker-compose 1.29 builds through the engine API (no BuildKit here).
                "COMPOSE_DOCKER_CLI_BUILD": "0",
                "DOCKER_BUILDKIT": "0",
            }
        )
        env.update({PORT_VARIABLES[service]: str(port) for service, port in self.ports.items()})
        return env


# ---- tools --------------------------------------------------------------------------------


def compose_command() -> list[str]:
    """``docker compose`` when the Compose v2 plugin answers, else ``docker-compose``."""
    docker_cli = shutil.which("docker")
    if docker_cli is not None:
        probe = subprocess.run(
            [docker_cli, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker_cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise ToolMissingError(
        "neither `docker compose` nor docker-compose is installed; "
        "install one (apt-get install docker-compose)"
    )


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stream(
    command: list[str], cwd: Path, env: dict[str, str], sink: OutputSink, timeout: float
) -> int:
    """Run ``command`` streaming to ``sink``; a kill after ``timeout`` s fails the step."""
    code = run_streaming(command, cwd, sink, env=env, timeout=timeout)
    if code == -signal.SIGKILL:
        raise StepFailed(f"{Path(command[0]).name} killed after {timeout:.0f}s")
    return code


# ---- signals ------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: unwind like Ctrl-C so the stack is torn down."""


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Terminated` while the stack may be up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, _: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    previous = {
        sig: signal.signal(sig, raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM during cleanup, so a second Ctrl-C cannot leave the stack up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- steps --------------------------------------------------------------------------------


def _step(run: _Run, name: str, action: Callable[[], str]) -> None:
    """Run one step, time it and record it; a failure is recorded and re-raised."""
    run.sink(f"== {name}")
    started = time.perf_counter()
    try:
        detail = action()
    except (StepFailed, ScaffoldError) as exc:
        message = exc.message if isinstance(exc, ScaffoldError) else str(exc)
        run.steps.append(Step(name, False, time.perf_counter() - started, message))
        raise
    run.steps.append(Step(name, True, time.perf_counter() - started, detail))


def _start_engine(run: _Run) -> str:
    from ..containers.engine import EnginePaths, answers, client, engine_pid, start_engine

    configured = os.environ.get("DOCKER_HOST", "")
    if configured and answers(configured):
        run.docker_host = configured
        detail = f"DOCKER_HOST={configured}"
    else:
        paths = EnginePaths.default()
        was_running = engine_pid(paths) is not None
        run.docker_host = start_engine(paths, log=run.sink)
        run.stop_private_engine = not was_running
        state = "already running" if was_running else "started, stopped at the end"
        detail = f"private dockerd {state} ({run.docker_host})"
        if configured:
            detail += f"; DOCKER_HOST={configured} did not answer"
    run.engine = client(run.docker_host)
    return detail + f"; dockerd {run.engine.version().get('Version', '?')}"


def _base_images(run: _Run) -> str:
    from ..containers.baseimages import BuildOptions, ensure_base_images, image_label
    from ..containers.engine import EnginePaths
    from ..containers.host import (
        default_ca_dir,
        host_debian_mirrors,
        host_index_settings,
        proxy_settings,
    )
    from ..containers.images import StandInPlan, project_base_images

    images = project_base_images(run.project)
    if run.docker_host == EnginePaths.default().docker_host:
        missing = images  # the private engine: stand-ins, rebuilt when their recipe changed
    else:  # another engine: only what it lacks (it may have the registry's images)
        missing = [image for image in images if image_label(run.engine, image) is None]
    if not missing:
        return "present: " + ", ".join(images)
    plan = StandInPlan.for_images(missing)
    options = BuildOptions(
        host_debian_mirrors(), default_ca_dir(), host_index_settings(), proxy_settings(os.environ)
    )
    report = ensure_base_images(run.engine, EnginePaths.default(), plan, options, run.sink)
    return "; ".join(f"{step.image} {step.action} {step.seconds:.1f}s" for step in report.steps)


def _compose(run: _Run, *args: str, timeout: float) -> None:
    command = [*run.compose, "-f", COMPOSE_FILE, "-p", run.name, *args]
    run.sink("$ " + " ".join(command))
    code = _stream(command, run.project, run.env(), run.sink, timeout)
    if code != 0:
        raise StepFailed(f"{' '.join(args[:1])} exited with {code}")


def _built_images(run: _Run) -> dict[str, str]:
    """Image names of the services with a ``build:`` section, from ``compose config``."""
    import yaml

    result = subprocess.run(
        [*run.compose, "-f", COMPOSE_FILE, "-p", run.name, "config"],
        cwd=run.project,
        env=run.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StepFailed(f"compose config: {result.stderr.strip().splitlines()[-1:]}")
    services = (yaml.safe_load(result.stdout) or {}).get("services", {})
    return {
        name: str(spec.get("image") or f"{run.name}_{name}")
        for name, spec in services.items()
        if isinstance(spec, dict) and "build" in spec
    }


def _build(run: _Run) -> str:
    _compose(run, "build", timeout=Timeouts.build)
    parts = []
    for service, image in sorted(_built_images(run).items()):
        size = int(run.engine.images.get(image).attrs.get("Size", 0))
        parts.append(f"{service} {image} {size / 1e9:.2f} GB")
    return "; ".join(parts)


def _containers(run: _Run) -> list[Any]:
    return list(
        run.engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={run.name}"})
    )


def _up(run: _Run) -> str:
    run.stack_started = True
    _compose(run, "up", "-d", "--no-build", timeout=Timeouts.healthy)
    return ", ".join(f"{service} 127.0.0.1:{port}" for service, port in run.ports.items())


def _healthy(run: _Run, running_only: tuple[str, ...], timeout: float) -> str:
    from ..containers.health import wait_healthy

    ready = wait_healthy(
        run.engine,
        run.name,
        timeout=timeout,
        log=run.sink,
        running_only=running_only,
        may_recover=MODEL_SERVICES,
    )
    return ", ".join(
        f"{service} {seconds:.0f}s" + (" (running)" if service in running_only else "")
        for service, seconds in sorted(ready.items(), key=lambda item: item[1])
    )


def _project_verify(run: _Run) -> None:
    """Run the project's ``make verify-stack`` on the published ports; its steps join ours.

    The project knows its pipeline, models, routes and payloads; this runtime only brings
    the stack up and tears it down.
    """
    make = shutil.which("make")
    if make is None:
        raise ToolMissingError("make is not installed; install GNU make")
    report = run.project / STACK_REPORT
    report.unlink(missing_ok=True)
    ports = [f"{PORT_VARIABLES[service]}={port}" for service, port in run.ports.items()]
    args = f"ARGS=--json {STACK_REPORT} --ready-timeout {Timeouts.serving:.0f}"
    command = [make, "--no-print-directory", "verify-stack", *ports, args]
    run.sink("$ " + " ".join(command[2:]))
    started = time.perf_counter()
    code = _stream(command, run.project, dict(os.environ), run.sink, Timeouts.pipeline)
    steps = read_report_steps(report)
    run.steps.extend(steps)
    if code != 0 and all(step.ok for step in steps):
        run.steps.append(
            Step("make verify-stack", False, time.perf_counter() - started, f"exit {code}")
        )
    if code != 0 or not steps:
        raise StepFailed(f"make verify-stack exited with {code}")


def _print_failed_logs(run: _Run) -> None:
    """Print the last log lines of every service that is not running healthy."""
    with contextlib.suppress(Exception):
        for container in _containers(run):
            container.reload()
            state = container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") == "running" and health in {None, "healthy"}:
                continue
            service = container.labels.get(SERVICE_LABEL, container.name)
            run.sink(f"== logs of {service} ({state.get('Status')}/{health or '-'})")
            probes = (state.get("Health") or {}).get("Log") or []
            if probes:
                run.sink(f"last healthcheck: {str(probes[-1].get('Output', '')).strip()}")
            for line in container.logs(tail=LOG_TAIL).decode(errors="replace").splitlines():
                run.sink(f"  {line}")


def _down(run: _Run) -> None:
    """``compose down -v`` in its own session (a terminal Ctrl-C does not reach it)."""
    started = time.perf_counter()
    command = [*run.compose, "-f", COMPOSE_FILE, "-p", run.name, "down", "-v", "--remove-orphans"]
    run.sink("$ " + " ".join(command))
    try:
        result = subprocess.run(
            command,
            cwd=run.project,
            env=run.env(),
            capture_output=True,
            text=True,
            timeout=Timeouts.down,
            start_new_session=True,
            check=False,
        )
        ok = result.returncode == 0
        detail = "containers, network and volumes removed"
        if not ok:
            detail = f"exit {result.returncode}: {result.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        ok, detail = False, f"timed out after {Timeouts.down:.0f}s"
    if run.engine is not None:
        left = _containers(run)
        for container in left:  # whatever compose left behind, removed through the API
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
        if left:
            detail += f"; removed {len(left)} leftover container(s) through the API"
    run.steps.append(Step("down", ok, time.perf_counter() - started, detail))


def _disk(run: _Run) -> str:
    with contextlib.suppress(Exception):
        usage = run.engine.df()
        layers = int(usage.get("LayersSize") or 0)
        return f"engine images {layers / 1e9:.2f} GB"
    return "engine disk usage unknown"


def _stop_engine(run: _Run) -> None:
    from ..containers.engine import EnginePaths, stop_engine

    if run.engine is not None:
        with contextlib.suppress(Exception):
            run.engine.close()
    if run.stop_private_engine:
        started = time.perf_counter()
        stopped = stop_engine(EnginePaths.default(), log=run.sink)
        run.steps.append(
            Step("engine stop", True, time.perf_counter() - started, f"stopped by PID: {stopped}")
        )


def verify_in_docker(
    project: Path, sink: OutputSink | None = None, *, name: str | None = None
) -> VerifyReport:
    """Build and run ``project``'s compose stack, drive it end to end, always tear it down.

    The project must have been set up (``make setup``: the pipeline runs on the host
    against the stack's MLflow). Returns the step report; raises ScaffoldError subclasses
    for what the user must fix first (no compose file, no venv, no engine, not root).
    """
    project = project.expanduser().resolve()
    if not (project / COMPOSE_FILE).is_file():
        raise ProjectError(f"{project}: no {COMPOSE_FILE}")
    if not (project / ".venv" / "bin" / "python").is_file():
        raise ProjectError(f"{project}: not set up yet; run `make setup` there first")
    if importlib.util.find_spec("docker") is None:
        raise ToolMissingError(
            "--runtime docker needs the container harness: install mlops-scaffold[containers]"
        )
    run = _Run(
        project,
        sink or (lambda _line: None),
        name or f"smoke-{project.name.lower()}-{secrets.token_hex(3)}".replace("_", "-"),
    )
    run.compose = compose_command()
    run.ports = {service: free_port() for service in PORT_VARIABLES}
    with _interruptible():
        try:
            _step(run, "engine", lambda: _start_engine(run))
            _step(run, "base images", lambda: _base_images(run))
            _step(run, "build", lambda: _build(run))
            _step(run, "up", lambda: _up(run))
            _step(run, "healthy", lambda: _healthy(run, MODEL_SERVICES, Timeouts.healthy))
            _project_verify(run)
            _step(run, "serving healthy", lambda: _healthy(run, (), Timeouts.serving))
        except (StepFailed, ContainerEngineError, ProjectError) as exc:
            if not run.steps or run.steps[-1].ok:  # raised outside _step: still report it
                message = exc.message if isinstance(exc, ScaffoldError) else str(exc)
                run.steps.append(Step("docker", False, 0.0, message))
            if run.stack_started:
                _print_failed_logs(run)
            if run.engine is None:
                raise
        finally:
            with _shielded():
                if run.stack_started:
                    _down(run)
                if run.engine is not None:
                    run.steps.append(Step("disk", True, 0.0, _disk(run)))
                _stop_engine(run)
    return VerifyReport(project, run.steps)
