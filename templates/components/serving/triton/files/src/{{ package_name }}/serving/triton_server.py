"""Serve the champion with NVIDIA Triton Inference Server (``serving=triton``).

``python -m <package>.serving.triton_server --model-dir build/triton`` runs in the Triton
environment, ``.venv-triton`` (``make setup``: PyTriton 0.7.0, which bundles a real
``tritonserver`` binary, needs numpy<2), with ``PYTHONPATH=src``: it imports only this
package's data contract (``schema``), the task table (``outputs``) and the ONNX Runtime
scorer (``model.onnx_predict_proba``), never MLflow. ``--model-dir`` holds what
:mod:`.triton_export` wrote in the project's environment: ``model.onnx`` (the champion's
graph, checked against sklearn there) and ``model.json`` (name, version).

Triton serves it as a Python-backend model named after the registered model, version =
the registry version, over the KServe V2 protocol on HTTP and gRPC, with Triton's own
Prometheus metrics on a third port; every listener is bound to ``--host`` (default
127.0.0.1; Triton's own default is 0.0.0.0). The model takes one ``[n, 1]`` input per
feature column (INT64 or FP64, by ``schema.FEATURE_DTYPES``) and answers the task's output
fields (``outputs.OUTPUT_FIELDS``): binary ``churn_probability`` FP64 and ``churn`` BOOL,
multiclass ``probabilities`` FP64 ``[n, classes]`` and ``label`` BYTES, regression
``prediction`` FP64.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, FEATURE_DTYPES, LABEL_CLASSES, TASK
from . import outputs

MODEL_FILE = "model.onnx"
IDENTITY_FILE = "model.json"
MAX_BATCH_SIZE = 1024
"""Most rows Triton accepts in one request (it refuses larger ones with a 400)."""
DEFAULT_THRESHOLD = 0.5
"""P(churn) at and above which a row is labelled churn (binary), unless ``CHURN_THRESHOLD``."""


def input_dtype(name: str) -> Any:
    """The numpy dtype of feature ``name``'s input tensor: int64 for integers, else float64."""
    return np.int64 if FEATURE_DTYPES[name].startswith("int") else np.float64


def output_specs() -> dict[str, tuple[Any, tuple[int, ...]]]:
    """``{output name: (numpy dtype, shape of one row)}`` for TASK, from ``outputs``' fields."""
    kinds: dict[str, tuple[Any, tuple[int, ...]]] = {
        "churn_probability": (np.float64, (1,)),
        "churn": (np.bool_, (1,)),
        "probabilities": (np.float64, (len(LABEL_CLASSES),)),
        "label": (np.bytes_, (1,)),
        "prediction": (np.float64, (1,)),
    }
    return {name: kinds[name] for name in outputs.OUTPUT_FIELDS}


def feature_matrix(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The ``[n, features]`` float64 matrix (FEATURE_COLUMNS order) of a batch of inputs."""
    columns = [np.asarray(inputs[name]).reshape(-1) for name in FEATURE_COLUMNS]
    return np.column_stack(columns).astype(np.float64)


def output_tensors(scores: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The task's output tensors for ``scores`` (:func:`.outputs.model_scores`), row-major."""
    rows = outputs.labelled(scores, threshold)
    tensors: dict[str, np.ndarray] = {}
    for name, (dtype, shape) in output_specs().items():
        values = [row[name] for row in rows]
        if name == "probabilities":
            values = [[row[label] for label in LABEL_CLASSES] for row in values]
        elif dtype is np.bytes_:
            values = [str(value).encode() for value in values]
        tensors[name] = np.asarray(values, dtype=object if dtype is np.bytes_ else dtype).reshape(
            (len(rows), *shape)
        )
    return tensors


def scorer(model_dir: Path, threshold: float) -> Any:
    """The batch inference function: inputs by feature name -> the task's output tensors."""
    from .model import onnx_predict_proba

    predict = onnx_predict_proba((model_dir / MODEL_FILE).read_bytes())

    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        features = feature_matrix(inputs)
        scores = outputs.model_scores(predict(features), len(features))
        return output_tensors(scores, threshold)

    return infer


def identity(model_dir: Path) -> tuple[str, int]:
    """The registered model's name and version that :mod:`.triton_export` wrote."""
    found = json.loads((model_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
    return str(found["name"]), int(found["version"])


def serve(model_dir: Path, host: str, http_port: int, grpc_port: int, metrics_port: int) -> None:
    """Bind the champion to Triton on ``host`` and serve until interrupted."""
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    if CATEGORICAL_FEATURES:
        raise SystemExit("error: serving=triton serves numeric features only (ONNX input)")
    name, version = identity(model_dir)
    threshold = float(os.environ.get("CHURN_THRESHOLD", DEFAULT_THRESHOLD))
    config = TritonConfig(
        http_address=host,
        http_port=http_port,
        grpc_address=host,
        grpc_port=grpc_port,
        metrics_address=host,
        metrics_port=metrics_port,
        allow_gpu_metrics=False,
        log_verbose=0,
        exit_on_error=True,
    )
    inputs = [Tensor(name=c, dtype=input_dtype(c), shape=(1,)) for c in FEATURE_COLUMNS]
    results = [
        Tensor(name=field, dtype=dtype, shape=shape)
        for field, (dtype, shape) in output_specs().items()
    ]
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            model_version=version,
            infer_func=batch(scorer(model_dir, threshold)),
            inputs=inputs,
            outputs=results,
            config=ModelConfig(max_batch_size=MAX_BATCH_SIZE),
            strict=True,
        )
        logging.getLogger(__name__).warning(
            "Triton serves %s v%s (%s) on %s: HTTP %s, gRPC %s, metrics %s",
            name, version, TASK, host, http_port, grpc_port, metrics_port,
        )  # fmt: skip
        triton.serve()


def main(argv: list[str] | None = None) -> None:
    """Serve ``--model-dir`` with Triton; ports from the flags or the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, default=Path("build/triton"))
    parser.add_argument("--host", default=os.environ.get("SERVING_HOST", "127.0.0.1"))
    parser.add_argument(
        "--http-port", type=int, default=int(os.environ.get("SERVING_PORT", "8000"))
    )
    parser.add_argument(
        "--grpc-port", type=int, default=int(os.environ.get("TRITON_GRPC_PORT", "8001"))
    )
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("TRITON_METRICS_PORT", "8002"))
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for needed in (MODEL_FILE, IDENTITY_FILE):
        if not (args.model_dir / needed).is_file():
            raise SystemExit(
                f"error: {args.model_dir / needed} is missing: run"
                " 'python -m <package>.serving.triton_export' first (make serve does)"
            )
    serve(args.model_dir, args.host, args.http_port, args.grpc_port, args.metrics_port)


if __name__ == "__main__":
    main()
