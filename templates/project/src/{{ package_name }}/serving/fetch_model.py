"""``python -m <package>.serving.fetch_model``: fetch the champion for a serving worker.

The serving worker does not import MLflow (about 25 MB of its memory, plus the skops
loader, which imports every scikit-learn estimator module: another 30 MB). At start-up
it runs this module in a short-lived subprocess instead, which uses MLflow to

1. resolve the ``champion`` alias of ``--model-name`` to one version,
2. download and load that version with MLflow's own sklearn loader (any artifact store
   MLflow reaches: local files, ``mlflow-artifacts:`` through the tracking server, S3;
   credentials come from the environment, e.g. ``MLFLOW_TRACKING_USERNAME`` /
   ``MLFLOW_TRACKING_PASSWORD``, ``AWS_*``),
3. write the loaded estimator to ``--out``/``model.pkl`` (standard pickle, cloudpickle
   when the object needs it), a directory the worker created for it (mode 0700),

and prints ``{"name", "version", "run_id", "path"}`` as one JSON line. The worker then
unpickles the estimator, importing only the scikit-learn modules it is made of.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

from ..config import MODEL_ALIAS

PICKLE_NAME = "model.pkl"


def fetch_champion(tracking_uri: str, model_name: str, out: Path) -> dict[str, str | None]:
    """Write the champion of ``model_name`` to ``out/model.pkl``; return its identity."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    version = MlflowClient().get_model_version_by_alias(model_name, MODEL_ALIAS)
    uri = f"models:/{model_name}/{version.version}"
    artifacts = out / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    model: Any = mlflow.sklearn.load_model(uri, dst_path=str(artifacts))
    try:
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        import cloudpickle  # an MLflow dependency: classes defined in __main__, lambdas

        payload = cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    path = out / PICKLE_NAME
    path.write_bytes(payload)
    shutil.rmtree(artifacts, ignore_errors=True)
    return {
        "name": model_name,
        "version": str(version.version),
        "run_id": version.run_id,
        "uri": uri,
        "path": str(path),
    }


def main(argv: list[str] | None = None) -> None:
    """Fetch the champion and print its identity as one JSON line on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--out", type=Path, required=True, help="an existing, private directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if not args.out.is_dir():
        raise SystemExit(f"error: --out {args.out} is not a directory")
    try:
        fetched = fetch_champion(args.tracking_uri, args.model_name, args.out)
    except Exception as exc:  # one line for the worker's /ready detail
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SystemExit(f"error: {type(exc).__name__}: {first}") from None
    print(json.dumps(fetched), flush=True)


if __name__ == "__main__":
    main()
