"""Serve the champion with TorchServe (``serving=torchserve``).

``python -m <package>.serving.torchserve_server --model-dir build/torchserve`` runs in the
TorchServe environment, ``.venv-torchserve`` (``make setup``: TorchServe 0.12.0, its model
archiver and torch's CPU build, which TorchServe's Python worker imports), with
``PYTHONPATH=src``. ``--model-dir`` holds what :mod:`.torchserve_export` wrote in the
project's environment (``model.onnx``, ``model.json``, ``handler.py``). This module

1. packs them into ``<model-dir>/model-store/<model>.mar`` with ``torch-model-archiver``
   (model name = the registered model's, version = the registry version),
2. writes ``<model-dir>/config.properties``: the inference, management, metrics and both
   gRPC listeners on ``--host`` (default 127.0.0.1; TorchServe's own default for gRPC is
   every interface), token authorization off (on by default since TorchServe 0.11: the
   listeners are loopback-only, or the container's network), the model-management API
   off, archives loadable from the model store only, ``metrics_mode=prometheus``
   (``/metrics`` on the metrics port), one worker, request bodies handed to the handler
   undecoded, no per-model pip installs, no system-metrics collector process, a 256 MB
   Java heap,
3. execs ``torchserve --start --foreground`` on it, with its logs (``LOG_LOCATION``,
   ``METRICS_LOCATION``) and its pid file (``TMPDIR``) under ``--model-dir``, not the
   current directory and ``/tmp``, and ``PROJECT_ROOT`` (where the handler finds
   ``params.yaml`` and the Feast repository) the current directory unless set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .torchserve_handler import ENTRY_POINT, IDENTITY_FILE, MODEL_FILE

STORE = "model-store"
CONFIG = "config.properties"
JAVA_HEAP = "-Xmx256m"
PORT_DEFAULTS = {
    "http_port": ("SERVING_PORT", 8000),
    "management_port": ("TORCHSERVE_MANAGEMENT_PORT", 8081),
    "metrics_port": ("TORCHSERVE_METRICS_PORT", 8082),
    "grpc_port": ("TORCHSERVE_GRPC_PORT", 7070),
    "grpc_management_port": ("TORCHSERVE_GRPC_MANAGEMENT_PORT", 7071),
    "worker_port": ("TORCHSERVE_WORKER_PORT", 9000),
}
"""Flag -> (environment variable, default). ``worker_port``: the first port of the
frontend-to-worker sockets (TorchServe's ``initial_worker_port``)."""


def identity(model_dir: Path) -> tuple[str, str]:
    """The registered model's name and version that :mod:`.torchserve_export` wrote."""
    found = json.loads((model_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
    return str(found["name"]), str(found["version"])


def archive(model_dir: Path) -> Path:
    """Pack the exported files into ``<model-dir>/model-store/<name>.mar``; returns it."""
    name, version = identity(model_dir)
    store = model_dir / STORE
    store.mkdir(parents=True, exist_ok=True)
    archiver = Path(sys.executable).parent / "torch-model-archiver"
    extra = f"{model_dir / MODEL_FILE},{model_dir / IDENTITY_FILE}"
    command = [
        str(archiver), "--model-name", name, "--version", version,
        "--handler", str(model_dir / ENTRY_POINT), "--extra-files", extra,
        "--export-path", str(store), "--force",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return store / f"{name}.mar"


def properties(model_dir: Path, host: str, ports: dict[str, int]) -> dict[str, str]:
    """TorchServe's ``config.properties`` for ``model_dir``'s archive, listeners on ``host``."""
    name, _ = identity(model_dir)
    return {
        "inference_address": f"http://{host}:{ports['http_port']}",
        "management_address": f"http://{host}:{ports['management_port']}",
        "metrics_address": f"http://{host}:{ports['metrics_port']}",
        "grpc_inference_address": host,
        "grpc_inference_port": str(ports["grpc_port"]),
        "grpc_management_address": host,
        "grpc_management_port": str(ports["grpc_management_port"]),
        "initial_worker_port": str(ports["worker_port"]),
        "model_store": str((model_dir / STORE).resolve()),
        "allowed_urls": f"file://{(model_dir / STORE).resolve()}/.*",
        "load_models": f"{name}={name}.mar",
        "default_workers_per_model": "1",
        "disable_token_authorization": "true",
        "enable_model_api": "false",
        "metrics_mode": "prometheus",
        "disable_system_metrics": "true",
        "decode_input_request": "false",
        "install_py_dep_per_model": "false",
        "vmargs": f"{JAVA_HEAP} -XX:-UsePerfData",
    }


def write_config(model_dir: Path, host: str, ports: dict[str, int]) -> Path:
    """Write ``<model-dir>/config.properties``; returns its path."""
    path = model_dir / CONFIG
    lines = [f"{key}={value}" for key, value in properties(model_dir, host, ports).items()]
    path.write_text("# written by torchserve_server\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def server_env(model_dir: Path) -> dict[str, str]:
    """TorchServe's environment: its logs and pid file under ``model_dir``; ``PROJECT_ROOT``
    (the handler's Feast store and settings) the current directory unless given."""
    env = dict(os.environ)
    env.setdefault("PROJECT_ROOT", str(Path.cwd()))
    for variable, folder in (("LOG_LOCATION", "logs"), ("METRICS_LOCATION", "logs"),
                             ("TMPDIR", "run")):  # fmt: skip
        path = (model_dir / folder).resolve()
        path.mkdir(parents=True, exist_ok=True)
        env[variable] = str(path)
    return env


def command(model_dir: Path) -> list[str]:
    """``torchserve --start --foreground`` on ``model_dir``'s configuration."""
    torchserve = Path(sys.executable).parent / "torchserve"
    return [
        str(torchserve), "--start", "--foreground", "--ncs", "--disable-token-auth",
        "--ts-config", str((model_dir / CONFIG).resolve()),
        "--model-store", str((model_dir / STORE).resolve()),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Archive ``--model-dir``, configure TorchServe on ``--host`` and exec it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, default=Path("build/torchserve"))
    parser.add_argument("--host", default=os.environ.get("SERVING_HOST", "127.0.0.1"))
    for flag, (variable, default) in PORT_DEFAULTS.items():
        parser.add_argument(
            f"--{flag.replace('_', '-')}", type=int, default=int(os.environ.get(variable, default))
        )
    args = parser.parse_args(argv)
    for needed in (MODEL_FILE, IDENTITY_FILE, ENTRY_POINT):
        if not (args.model_dir / needed).is_file():
            raise SystemExit(
                f"error: {args.model_dir / needed} is missing: run"
                " 'python -m <package>.serving.torchserve_export' first (make serve does)"
            )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SystemExit("error: TorchServe's frontend needs Java 17+: java is not on PATH")
    archive(args.model_dir)
    write_config(args.model_dir, args.host, {flag: getattr(args, flag) for flag in PORT_DEFAULTS})
    os.execve(command(args.model_dir)[0], command(args.model_dir), server_env(args.model_dir))


if __name__ == "__main__":
    main()
