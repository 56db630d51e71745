"""``python -m <package>.serving.fetch_model``: fetch the champion for a serving worker.

The serving worker does not import MLflow (about 25 MB of its memory, plus the skops
loader, which imports every scikit-learn estimator module: another 30 MB). At start-up
it runs this module in a short-lived subprocess instead, which uses MLflow to

1. resolve the ``champion`` alias of ``--model-name`` to one version,
2. download and load that version with MLflow's own sklearn loader (any artifact store
   MLflow reaches: local files, ``mlflow-artifacts:`` through the tracking server, S3;
   credentials come from the environment, e.g. ``MLFLOW_TRACKING_USERNAME`` /
   ``MLFLOW_TRACKING_PASSWORD``, ``AWS_*``),
3. with ``--runtime onnx`` (the default), convert the estimator to ONNX with skl2onnx
   (float64 input, so probabilities match sklearn to ~1e-15), check that ONNX Runtime and
   sklearn agree on sample rows, and write ``--out``/``model.onnx``; the worker then
   scores with ONNX Runtime and imports neither scikit-learn, SciPy nor pandas,
4. otherwise (``--runtime sklearn``, or a model that does not convert or disagrees: the
   reason goes into ``fallback``) write the estimator to ``--out``/``model.pkl``
   (standard pickle, cloudpickle when the object needs it), which the worker unpickles,

into ``--out``, a directory the worker created for it (mode 0700), and prints
``{"name", "version", "created_ms", "run_id", "uri", "path", "runtime", "fallback"}``
as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle  # nosec B403 - only the champion this project's pipeline logged
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MODEL_ALIAS, load_settings
from ..schema import FEATURE_COLUMNS, FEATURE_DTYPES, TASK
from .model import ONNX_INPUT, ONNX_OUTPUT, RUNTIMES, onnx_predict_proba

PICKLE_NAME = "model.pkl"
ONNX_NAME = "model.onnx"
IDENTITY_NAME = "model.json"
"""Beside ``model.onnx`` for a server without MLflow (:func:`export_onnx`): name, version."""
AGREEMENT_TOLERANCE = 1e-9
"""Largest |ONNX - sklearn| score accepted on the sample rows (float64: ~1e-15), relative
to the score's size for predicted values (regression)."""
PREDICT_METHOD = "predict" if TASK == "regression" else "predict_proba"
"""What the served scores are: class probabilities, or predicted values (regression)."""
SAMPLE_ROWS = 512


class ConversionError(Exception):
    """The model cannot be served with ONNX Runtime; the message says why (one line)."""


def sample_frame(rows: int = SAMPLE_ROWS, seed: int = 0) -> Any:
    """Rows to compare ONNX with sklearn on: all-zero rows plus random values in each dtype.

    Integers span 0..120 and floats -1,000..1,000 (wider than the data, so every term of
    the model matters); the all-zero row is the app's warm-up input.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for name, dtype in FEATURE_DTYPES.items():
        if np.dtype(dtype).kind == "i":
            values = rng.integers(0, 121, size=rows).astype(dtype)
        else:
            values = rng.uniform(-1000.0, 1000.0, size=rows).astype(dtype)
        values[0] = 0
        columns[name] = values
    return pd.DataFrame(columns)


def to_onnx(model: Any) -> bytes:
    """Convert a fitted sklearn classifier or regressor (or pipeline) to ONNX, float64 input.

    The graph reads ``ONNX_INPUT`` (``[n, len(FEATURE_COLUMNS)]`` float64, FEATURE_COLUMNS
    order) and writes ``ONNX_OUTPUT`` (``[n, classes]``, like ``predict_proba``, or
    ``[n, 1]`` values for regression). Raises :class:`ConversionError` when that is
    impossible.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or [str(name) for name in names] != FEATURE_COLUMNS:
        raise ConversionError("the model was not fitted on exactly FEATURE_COLUMNS, in order")
    if not hasattr(model, PREDICT_METHOD):
        raise ConversionError(f"{type(model).__name__} has no {PREDICT_METHOD}")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    own_graph = getattr(final, "onnx_model_", None)
    # Classifiers: a plain [n, classes] tensor of probabilities, not a list of dicts.
    options = {} if TASK == "regression" else {id(final): {"zipmap": False}}
    try:
        if isinstance(own_graph, bytes) and hasattr(model, "steps"):
            graph = after_preprocessing(model[:-1], own_graph)
        else:
            graph = convert_sklearn(
                model,
                initial_types=[(ONNX_INPUT, DoubleTensorType([None, len(FEATURE_COLUMNS)]))],
                options=options,
            )
    except Exception as exc:  # skl2onnx raises many types for unsupported estimators
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConversionError(
            f"skl2onnx cannot convert it ({type(exc).__name__}: {first})"
        ) from None
    outputs = [output.name for output in graph.graph.output]
    if ONNX_OUTPUT not in outputs:
        raise ConversionError(f"the ONNX graph has no {ONNX_OUTPUT!r} output (got {outputs})")
    payload: bytes = graph.SerializeToString()
    return payload


def after_preprocessing(preprocessing: Any, own_graph: bytes) -> Any:
    """The final estimator's own ONNX graph (``onnx_model_``) after its preprocessing's.

    For an estimator that exports itself (model=torch-mlp's MLP: ``torch.onnx.export``,
    one float64 input, an ``ONNX_OUTPUT`` output): skl2onnx converts the preprocessing
    steps at the same opset and ``onnx.compose`` wires their output into its input, so the
    graph still reads raw rows (``ONNX_INPUT``).
    """
    import onnx
    from onnx import compose, version_converter
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    tail = onnx.load_from_string(own_graph)
    opset = max(o.version for o in tail.opset_import if o.domain in ("", "ai.onnx"))
    head = convert_sklearn(
        preprocessing,
        initial_types=[(ONNX_INPUT, DoubleTensorType([None, len(FEATURE_COLUMNS)]))],
        target_opset=opset,
    )
    # skl2onnx picks the lowest opset its operators need: lift it to the tail's.
    head = version_converter.convert_version(head, opset)
    head.ir_version = tail.ir_version = min(head.ir_version, tail.ir_version)
    return compose.merge_models(
        head,
        tail,
        io_map=[(head.graph.output[0].name, tail.graph.input[0].name)],
        outputs=[ONNX_OUTPUT],
    )  # a name both graphs use raises here: the champion is then served with sklearn


def check_agreement(model: Any, onnx_model: bytes, sample: Any | None = None) -> float:
    """Largest |ONNX - sklearn| score on ``sample`` (default rows; every class's probability,
    or the predicted value relative to its size for regression).

    Raises :class:`ConversionError` when it exceeds ``AGREEMENT_TOLERANCE`` or the shapes
    differ.
    """
    frame = sample_frame() if sample is None else sample
    expected = np.asarray(getattr(model, PREDICT_METHOD)(frame), dtype=np.float64)
    features = frame[FEATURE_COLUMNS].to_numpy(dtype=np.float64)
    try:
        actual = np.asarray(onnx_predict_proba(onnx_model)(features), dtype=np.float64)
    except Exception as exc:  # e.g. an operator ONNX Runtime lacks for float64 (Imputer)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ConversionError(
            f"ONNX Runtime cannot run the graph ({type(exc).__name__}: {first})"
        ) from None
    if actual.size != expected.size or len(actual) != len(expected):
        raise ConversionError(f"ONNX returned shape {actual.shape}, sklearn {expected.shape}")
    actual, expected = actual.reshape(len(actual), -1), expected.reshape(len(expected), -1)
    scale = np.maximum(np.abs(expected), 1.0) if TASK == "regression" else 1.0
    difference = float(np.max(np.abs(actual - expected) / scale))
    if not difference <= AGREEMENT_TOLERANCE:  # also catches NaN
        raise ConversionError(
            f"ONNX and sklearn {'values' if TASK == 'regression' else 'probabilities'}"
            f" differ by up to {difference:.3g}"
            f" (tolerance {AGREEMENT_TOLERANCE:g})"
        )
    return difference


def write_for_worker(model: Any, out: Path, runtime: str) -> tuple[Path, str, str | None]:
    """Write ``model`` under ``out`` for ``runtime``; return (path, runtime used, fallback).

    With ``onnx``, the converted graph if it converts and agrees with sklearn, else the
    pickle and the one-line reason.
    """
    fallback = None
    if runtime == "onnx":
        try:
            onnx_model = to_onnx(model)
            check_agreement(model, onnx_model)
        except ConversionError as exc:
            fallback = str(exc)
        else:
            path = out / ONNX_NAME
            path.write_bytes(onnx_model)
            return path, "onnx", None
    try:
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        import cloudpickle  # an MLflow dependency: classes defined in __main__, lambdas

        payload = cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    path = out / PICKLE_NAME
    path.write_bytes(payload)
    return path, "sklearn", fallback


def fetch_champion(
    tracking_uri: str, model_name: str, out: Path, runtime: str = "onnx", alias: str = MODEL_ALIAS
) -> dict[str, str | None]:
    """Write ``alias`` (the champion) of ``model_name`` under ``out`` for ``runtime``."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    version = MlflowClient().get_model_version_by_alias(model_name, alias)
    uri = f"models:/{model_name}/{version.version}"
    artifacts = out / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    model: Any = mlflow.sklearn.load_model(uri, dst_path=str(artifacts))
    shutil.rmtree(artifacts, ignore_errors=True)
    path, used, fallback = write_for_worker(model, out, runtime)
    created = version.creation_timestamp  # ms since the epoch (staleness alert)
    return {
        "name": model_name,
        "version": str(version.version),
        "created_ms": None if created is None else str(created),
        "run_id": version.run_id,
        "uri": uri,
        "path": str(path),
        "runtime": used,
        "fallback": fallback,
    }


class NotConvertible(Exception):
    """The champion cannot be served as ONNX; the message says why (one line)."""


def export_onnx(
    tracking_uri: str, model_name: str, out: Path, server: str, alias: str = MODEL_ALIAS
) -> dict[str, str]:
    """Write ``alias`` of ``model_name`` as ``out/model.onnx`` + ``out/model.json``.

    For a serving application whose environment has ONNX Runtime but neither MLflow nor
    scikit-learn (``server`` names it in the refusal): a champion that does not convert
    to ONNX, or disagrees with sklearn, raises :class:`NotConvertible` with the reason.
    """
    out.mkdir(parents=True, exist_ok=True)
    fetched = fetch_champion(tracking_uri, model_name, out, "onnx", alias)
    if fetched["runtime"] != "onnx":
        (out / PICKLE_NAME).unlink(missing_ok=True)
        raise NotConvertible(
            f"{model_name} v{fetched['version']} does not convert to ONNX"
            f" ({fetched['fallback']}); {server} serves ONNX graphs only"
        )
    written = {
        "name": model_name,
        "version": str(fetched["version"]),
        "run_id": str(fetched["run_id"]),
        "path": str(out / ONNX_NAME),
    }
    (out / IDENTITY_NAME).write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    return written


def export_main(
    argv: list[str] | None,
    default_out: Path,
    doc: str | None,
    writer: Callable[[str, str, Path, str], dict[str, str]],
) -> None:
    """The command line of a server's export module: ``writer`` (a wrapper of
    :func:`export_onnx`) on the configured model's champion; prints what it wrote."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--tracking-uri", default=None, help="default: the project's settings")
    parser.add_argument("--alias", default=MODEL_ALIAS)
    args = parser.parse_args(argv)
    settings = load_settings()
    uri = args.tracking_uri or settings.tracking_uri
    try:
        written = writer(uri, settings.model_name, args.out, args.alias)
    except NotConvertible as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(written), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Fetch the champion and print its identity as one JSON line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--out", type=Path, required=True, help="an existing, private directory")
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnx")
    parser.add_argument("--alias", default=MODEL_ALIAS, help="registry alias (challenger...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if not args.out.is_dir():
        raise SystemExit(f"error: --out {args.out} is not a directory")
    try:
        fetched = fetch_champion(
            args.tracking_uri, args.model_name, args.out, args.runtime, args.alias
        )
    except Exception as exc:  # one line for the worker's /ready detail
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SystemExit(f"error: {type(exc).__name__}: {first}") from None
    print(json.dumps(fetched), flush=True)


if __name__ == "__main__":
    main()
