"""A private Docker engine: start ``dockerd`` with its own directories, stop it by PID.

The engine keeps everything under one directory (default
``~/.cache/mlops-scaffold/docker``, or ``$MLOPS_SCAFFOLD_DOCKER_DIR``): ``data/`` (images,
containers, volumes), ``exec/`` (runtime state, its own containerd), ``docker.sock``,
``dockerd.pid`` and ``dockerd.log``; ``images/`` holds the cached base-image tarballs.
It never touches a system Docker daemon and is stopped by the PID it wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import requests.exceptions

from ..errors import ContainerEngineError as ContainerEngineError  # re-exported
from ..errors import ToolMissingError
from .host import default_docker_dir

INSTALL_HINT = "apt-get install docker.io docker-compose debootstrap"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; containerd nests sockets under exec/

Log = Callable[[str], None]


def _silent(_: str) -> None:
    return None


@dataclass(frozen=True)
class EnginePaths:
    """Where the private engine keeps its state, all under ``root``."""

    root: Path

    @classmethod
    def default(cls) -> EnginePaths:
        """Paths under ``$MLOPS_SCAFFOLD_DOCKER_DIR`` or ``~/.cache/mlops-scaffold/docker``."""
        return cls(default_docker_dir())

    @property
    def data_root(self) -> Path:
        """``dockerd --data-root``: images, containers, volumes, build cache."""
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        """``dockerd --exec-root``: runtime state, including its private containerd."""
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        """The engine's API socket."""
        return self.root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        """``dockerd --pidfile``."""
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        """Log file of dockerd (stdout and stderr)."""
        return self.root / "dockerd.log"

    @property
    def images(self) -> Path:
        """Cached image tarballs, kept between runs (and worth caching in CI)."""
        return self.root / "images"

    @property
    def work(self) -> Path:
        """Scratch space (the debootstrap root filesystem while it is built)."""
        return self.root / "work"

    @property
    def docker_host(self) -> str:
        """The ``DOCKER_HOST`` URL of the engine."""
        return f"unix://{self.socket}"


@dataclass
class EngineStatus:
    """What ``status`` reports about the private engine."""

    paths: EnginePaths
    pid: int | None
    answering: bool
    server_version: str = ""
    images: list[str] = field(default_factory=list)
    cached: dict[str, int] = field(default_factory=dict)
    data_root_bytes: int = 0

    @property
    def running(self) -> bool:
        """True when dockerd runs and answers on its socket."""
        return self.pid is not None and self.answering


# ---- preconditions ------------------------------------------------------------------------


def require_tool(name: str) -> str:
    """Path of executable ``name``, or a :class:`ToolMissingError` with the install hint."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise ToolMissingError(f"{name} is not installed; install it with: {INSTALL_HINT}")
    return found


def require_root(action: str) -> None:
    """Raise unless running as root (dockerd and debootstrap need it)."""
    if os.geteuid() != 0:
        raise ContainerEngineError(
            f"{action} needs root (dockerd and debootstrap run as root); "
            "run it with sudo or in a root CI container"
        )


# ---- processes ----------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int, *, reap: bool = True) -> bool:
    if reap:
        _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in {"Z", "X"}


def _is_our_dockerd(pid: int, paths: EnginePaths) -> bool:
    """Tell whether ``pid`` is a live dockerd started with this engine's data-root."""
    if not _alive(pid):
        return False
    args = _cmdline(pid)
    return bool(args) and Path(args[0]).name == "dockerd" and str(paths.data_root) in args


def engine_pid(paths: EnginePaths) -> int | None:
    """PID of the running private dockerd, or ``None`` (a stale pidfile is ignored)."""
    try:
        pid = int(paths.pidfile.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_dockerd(pid, paths) else None


def _children_using(exec_root: Path) -> list[int]:
    """PIDs of processes (containerd, shims) whose command line names ``exec_root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if any(str(exec_root) in arg for arg in args) and _alive(int(entry.name), reap=False):
                found.append(int(entry.name))
    return found


# ---- talking to the engine ----------------------------------------------------------------


def client(docker_host: str, timeout: int = 600) -> Any:
    """Return a ``docker.DockerClient`` for ``docker_host`` (API version negotiated)."""
    try:
        return docker.DockerClient(base_url=docker_host, timeout=timeout)
    except docker.errors.DockerException as exc:
        raise ContainerEngineError(
            f"no Docker engine answers at {docker_host}: {exc}; "
            "start one with: scripts/local-images.sh engine-start"
        ) from None


def answers(docker_host: str) -> bool:
    """Tell whether an engine answers ``ping`` at ``docker_host``."""
    try:
        engine = docker.DockerClient(base_url=docker_host, timeout=5)
        try:
            return bool(engine.ping())
        finally:
            engine.close()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_engine(
    paths: EnginePaths | None = None, *, timeout: float = 60.0, log: Log = _silent
) -> str:
    """Start the private dockerd (or find it running) and return its ``DOCKER_HOST``.

    Idempotent: when this engine already runs, it only waits for its socket to answer.
    The daemon runs in its own session, so it outlives the calling process; stop it
    with :func:`stop_engine`.
    """
    paths = paths or EnginePaths.default()
    dockerd = require_tool("dockerd")
    require_root("starting dockerd")
    if len(str(paths.exec_root)) + len("/containerd/containerd.sock.ttrpc") > _MAX_SOCKET_PATH:
        raise ContainerEngineError(
            f"{paths.root} is too long for the engine's unix sockets; "
            "point MLOPS_SCAFFOLD_DOCKER_DIR at a shorter path"
        )
    pid = engine_pid(paths)
    if pid is not None:
        log(f"dockerd already running (pid {pid}), waiting for {paths.socket}")
        _wait_answering(paths, None, timeout)
        return paths.docker_host
    for directory in (paths.root, paths.data_root, paths.exec_root, paths.images):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in (paths.pidfile, paths.socket):
        stale.unlink(missing_ok=True)
    command = [
        dockerd,
        "--data-root",
        str(paths.data_root),
        "--exec-root",
        str(paths.exec_root),
        "--host",
        paths.docker_host,
        "--pidfile",
        str(paths.pidfile),
    ]
    log("starting " + " ".join(command))
    with paths.log.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_answering(paths, process, timeout)
    log(f"dockerd running (pid {process.pid}) at {paths.docker_host}")
    return paths.docker_host


def _wait_answering(
    paths: EnginePaths, process: subprocess.Popen[bytes] | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ContainerEngineError(
                f"dockerd exited with code {process.returncode}; last lines of {paths.log}:\n"
                + _log_tail(paths.log)
            )
        if paths.socket.exists() and answers(paths.docker_host):
            return
        time.sleep(0.25)
    if process is not None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    raise ContainerEngineError(
        f"dockerd did not answer on {paths.socket} within {timeout:.0f}s; "
        f"last lines of {paths.log}:\n" + _log_tail(paths.log)
    )


def stop_engine(
    paths: EnginePaths | None = None, *, timeout: float = 30.0, log: Log = _silent
) -> bool:
    """Stop the private dockerd by the PID in its pidfile; False when it was not running.

    SIGTERM first (dockerd stops its containers and its containerd), SIGKILL after
    ``timeout``; then any containerd or shim still naming this engine's exec-root.
    """
    paths = paths or EnginePaths.default()
    pid = engine_pid(paths)
    if pid is None:
        paths.pidfile.unlink(missing_ok=True)
        log("dockerd is not running")
        return False
    log(f"stopping dockerd (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        log(f"dockerd (pid {pid}) ignored SIGTERM for {timeout:.0f}s, killing it")
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    for leftover in _children_using(paths.exec_root):
        log(f"killing leftover process {leftover}: {' '.join(_cmdline(leftover))}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    paths.pidfile.unlink(missing_ok=True)
    paths.socket.unlink(missing_ok=True)
    return True


# ---- status -------------------------------------------------------------------------------


def disk_usage(path: Path) -> int:
    """Bytes allocated under ``path`` (hard links counted once, mounts not crossed)."""
    if not path.exists():
        return 0
    total = 0
    seen: set[tuple[int, int]] = set()
    device = path.stat().st_dev
    for directory, dirnames, filenames in os.walk(path):
        for name in [*filenames, *dirnames]:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if info.st_dev != device or (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
    return total


def engine_status(paths: EnginePaths | None = None) -> EngineStatus:
    """Whether the engine runs, its images, the cached tarballs and the disk it uses."""
    paths = paths or EnginePaths.default()
    pid = engine_pid(paths)
    status = EngineStatus(paths, pid, pid is not None and answers(paths.docker_host))
    if paths.images.is_dir():
        status.cached = {
            tarball.name: tarball.stat().st_size for tarball in sorted(paths.images.glob("*.tar"))
        }
    status.data_root_bytes = disk_usage(paths.data_root)
    if status.running:
        engine = client(paths.docker_host, timeout=30)
        try:
            status.server_version = str(engine.version().get("Version", ""))
            status.images = sorted(tag for image in engine.images.list() for tag in image.tags)
        finally:
            engine.close()
    return status
