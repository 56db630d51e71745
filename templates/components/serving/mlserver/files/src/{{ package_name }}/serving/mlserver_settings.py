"""Write the MLServer configuration that serves the registry's champion (``serving=mlserver``).

``python -m <package>.serving.mlserver_settings --out build/mlserver`` resolves the
``champion`` alias once and writes ``settings.json`` (127.0.0.1, the HTTP, gRPC and
metrics ports, ``parallel_workers: 0``: inference in the server process, which suits a
small machine) and ``<model>/model-settings.json`` (MLServer's MLflow runtime on
``models:/<name>/<version>``, with that version, so V2 answers name the exact version).
``make serve`` then runs ``.venv-mlserver/bin/mlserver start build/mlserver``: MLServer
lives in its own environment (it pins fastapi<0.116, below this project's pin).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..config import MODEL_ALIAS, load_settings

RUNTIME = "mlserver_runtime.ChurnRuntime"
"""``mlserver_runtime.py`` (project root): the MLflow runtime, input errors answered 400."""


def server_settings(host: str, http_port: int, grpc_port: int, metrics_port: int) -> dict[str, Any]:
    """MLServer's ``settings.json``: every listener bound to ``host``, one process."""
    return {
        "debug": False,
        "host": host,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_endpoint": "/metrics",
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }


def model_settings(model_name: str, version: str) -> dict[str, Any]:
    """``model-settings.json`` of ``model_name`` ``version`` on the MLflow runtime."""
    return {
        "name": model_name,
        "implementation": RUNTIME,
        "parameters": {"uri": f"models:/{model_name}/{version}", "version": version},
    }


def write(out: Path, model_name: str, version: str, **ports: Any) -> Path:
    """Write both files under ``out`` (created); returns the model's settings file."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(server_settings(**ports), indent=2) + "\n")
    model_dir = out / model_name
    model_dir.mkdir(exist_ok=True)
    path = model_dir / "model-settings.json"
    path.write_text(json.dumps(model_settings(model_name, version), indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    """Resolve ``<model>@champion`` in MLflow and write the configuration under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/mlserver"))
    parser.add_argument("--host", default=os.environ.get("SERVING_HOST", "127.0.0.1"))
    parser.add_argument(
        "--http-port", type=int, default=int(os.environ.get("SERVING_PORT", "8000"))
    )
    parser.add_argument(
        "--grpc-port", type=int, default=int(os.environ.get("MLSERVER_GRPC_PORT", "8081"))
    )
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("MLSERVER_METRICS_PORT", "8082"))
    )
    args = parser.parse_args(argv)
    from mlflow import MlflowClient

    settings = load_settings()
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    version = str(client.get_model_version_by_alias(settings.model_name, MODEL_ALIAS).version)
    path = write(
        args.out,
        settings.model_name,
        version,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    print(f"{path}: {settings.model_name} v{version}")


if __name__ == "__main__":
    main()
