"""Entry point of the MLServer image: write its configuration, then exec ``mlserver start``.

The container has MLServer's environment only (not the project's package), so this
stdlib script reads the model name from params.yaml (or MODEL_NAME) and writes, under
/tmp/mlserver (the container's tmpfs), settings.json (HTTP 8000, gRPC 8081, metrics 8082
on 0.0.0.0 inside the container, parallel_workers 0) and model-settings.json: MLServer's
MLflow runtime on ``models:/<name>@champion`` of MLFLOW_TRACKING_URI.
"""

import json
import os
import re
from pathlib import Path

OUT = Path("/tmp/mlserver")


def model_name() -> str:
    if os.environ.get("MODEL_NAME"):
        return os.environ["MODEL_NAME"]
    text = Path("/app/params.yaml").read_text(encoding="utf-8")
    found = re.search(r"^model:\s*\n\s+name:\s*([^\s#]+)", text, re.MULTILINE)
    if not found:
        raise SystemExit("params.yaml has no model.name")
    return found.group(1).strip("'\"")


def main() -> None:
    name = model_name()
    (OUT / name).mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "host": "0.0.0.0",
        "http_port": 8000,
        "grpc_port": 8081,  # nosec B104
        "metrics_port": 8082,
        "metrics_endpoint": "/metrics",
        "parallel_workers": 0,
    }
    model = {
        "name": name,
        "implementation": "mlserver_runtime.ChurnRuntime",
        "parameters": {"uri": f"models:/{name}@champion"},
    }
    (OUT / "settings.json").write_text(json.dumps(settings, indent=2))
    (OUT / name / "model-settings.json").write_text(json.dumps(model, indent=2))
    os.execvp("mlserver", ["mlserver", "start", str(OUT)])


if __name__ == "__main__":
    main()
