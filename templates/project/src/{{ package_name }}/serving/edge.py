"""``python -m <package>.serving.edge``: export the champion as a dependency-free edge bundle.

``make edge-bundle`` runs it. It resolves the registry's ``champion`` alias to one version,
converts that model to ONNX the way the serving worker does (:mod:`.fetch_model`: skl2onnx
with float64 input, checked against sklearn on sample rows) and writes ``--out``
(default ``dist/edge/``):

- ``model.onnx``: the champion,
- ``schema.json``: the data contract the model reads (feature names in column order,
  dtypes, ranges, categories; the graph's input and output; the model's name, version
  and run id),
- ``score.py``: a scoring script needing only ONNX Runtime, NumPy and the standard
  library (:mod:`.edge_score`),
- ``README.md``: how to run it, with the size and the latency measured here.

It then loads the bundle's own ``score.py`` and prints the bundle's size and the median
single-row latency of ``--latency-runs`` calls (default 200), after checking that the
bundle's scores equal the champion's (sklearn) on sample rows. A champion that does not
convert (e.g. string features) is refused: one line, exit 1. The graph's output and
what ``score.py`` answers follow the task (binary, multiclass, regression).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..config import MODEL_ALIAS, Settings, load_settings
from ..schema import (
    FEATURE_CATEGORIES,
    FEATURE_COLUMNS,
    FEATURE_DTYPES,
    FEATURE_RANGES,
    LABEL_CLASSES,
    LABEL_COLUMN,
    NULLABLE_FEATURES,
    TASK,
)
from .fetch_model import AGREEMENT_TOLERANCE, fetch_champion, sample_frame
from .model import ONNX_INPUT, ONNX_OUTPUT
from .outputs import model_scores, raw_scorer

SCRIPT = Path(__file__).with_name("edge_score.py")
FILES = ("model.onnx", "schema.json", "score.py", "README.md")
DEFAULT_RUNS = 200
OUTPUT_TYPE = {
    "binary": "float64[n, 2]: predict_proba; score.py answers the last (positive) class",
    "multiclass": "float64[n, classes]: predict_proba, columns in the order of classes",
    "regression": "float64[n, 1]: the predicted value",
}[TASK]
"""The ONNX graph's output, as ``schema.json`` describes it."""
ANSWER = {
    "binary": '`{"probability": p}`, the probability of the positive class',
    "multiclass": '`{"label": c, "probabilities": {class: p}}`, the most probable class'
    " and every class's probability",
    "regression": '`{"prediction": y}`, the predicted value',
}[TASK]
"""What ``score.py`` prints for each row (the bundle's README)."""


class BundleError(Exception):
    """The bundle cannot be built; the message says why (one line)."""


def schema_document(identity: dict[str, Any]) -> dict[str, Any]:
    """``schema.json``: the features in column order and the model they feed."""
    return {
        "task": TASK,
        "label": LABEL_COLUMN,
        "classes": list(LABEL_CLASSES),
        "features": [
            {
                "name": name,
                "dtype": FEATURE_DTYPES[name],
                "nullable": name in NULLABLE_FEATURES,
                **({"range": list(FEATURE_RANGES[name])} if name in FEATURE_RANGES else {}),
                **(
                    {"categories": list(FEATURE_CATEGORIES[name])}
                    if name in FEATURE_CATEGORIES
                    else {}
                ),
            }
            for name in FEATURE_COLUMNS
        ],
        "model": {
            "file": "model.onnx",
            "input": ONNX_INPUT,
            "input_type": f"float64[n, {len(FEATURE_COLUMNS)}]",
            "output": ONNX_OUTPUT,
            "output_type": OUTPUT_TYPE,
            "name": identity["name"],
            "version": identity["version"],
            "alias": MODEL_ALIAS,
            "run_id": identity.get("run_id"),
        },
    }


def load_script(bundle: Path) -> ModuleType:
    """The bundle's ``score.py`` as a module (what a device runs, not this package's copy)."""
    spec = importlib.util.spec_from_file_location("edge_bundle_score", bundle / "score.py")
    if spec is None or spec.loader is None:
        raise BundleError(f"{bundle / 'score.py'}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme(schema: dict[str, Any], sizes: dict[str, int], latency: dict[str, float]) -> str:
    """The bundle's README: what it holds, how to run it, the figures measured here."""
    model = schema["model"]
    names = ", ".join(f["name"] for f in schema["features"])
    lines = [
        f"# Edge bundle: {model['name']} version {model['version']} ({model['alias']})",
        "",
        "The champion exported to ONNX, with the data contract it reads and a scoring",
        "script that needs only ONNX Runtime, NumPy and the Python standard library.",
        "",
        "| file | bytes |",
        "|---|---|",
        *(f"| {name} | {size} |" for name, size in sizes.items()),
        "",
        "```bash",
        "pip install onnxruntime numpy",
        "python score.py rows.jsonl      # one JSON object of features a line; '-': stdin",
        "python score.py --latency 200   # median single-row latency on this device",
        "```",
        "",
        f"Each row needs every feature, as a number: {names}.",
        f"Each output line is {ANSWER}.",
        "",
        f"Measured where the bundle was built: single-row latency median "
        f"{latency['median_ms']:.3f} ms, p90 {latency['p90_ms']:.3f} ms "
        f"({int(latency['runs'])} calls).",
        "",
    ]
    return "\n".join(lines)


def check_scores(bundle: Path, model: Any, rows: int = 64) -> float:
    """Largest |bundle - champion| score on sample rows; raises past the tolerance.

    The scores of the task (:func:`.outputs.model_scores`): P(class 1), every class's
    probability, or the predicted value.
    """
    frame = sample_frame(rows, seed=1)
    expected = model_scores(raw_scorer(model)(frame), len(frame))
    records = frame.to_dict(orient="records")  # native Python numbers, as JSON would give
    got = load_script(bundle).Scorer(bundle).scores(records)
    gap = float(np.max(np.abs(got - expected)))
    if not gap <= AGREEMENT_TOLERANCE:
        raise BundleError(f"the bundle's scores differ from the champion's by up to {gap:.3g}")
    return gap


def build(settings: Settings, out: Path, runs: int = DEFAULT_RUNS) -> dict[str, Any]:
    """Write the bundle under ``out`` (replaced); return its identity, sizes and latency."""
    import mlflow.sklearn

    from ..platform.tracking import configure_tracking

    configure_tracking(settings)
    with tempfile.TemporaryDirectory(prefix="edge-bundle-") as scratch:
        try:
            identity = fetch_champion(
                settings.tracking_uri, settings.model_name, Path(scratch), "onnx"
            )
        except Exception as exc:  # MLflow raises many types: no model, no alias, no store
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BundleError(
                f"no {settings.model_name}@{MODEL_ALIAS} to export "
                f"({type(exc).__name__}: {first}); run `make train` first"
            ) from None
        if identity["runtime"] != "onnx":
            raise BundleError(f"the champion does not convert to ONNX: {identity['fallback']}")
        staging = out.with_name(f".{out.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copyfile(str(identity["path"]), staging / "model.onnx")
    schema = schema_document(identity)
    (staging / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(SCRIPT, staging / "score.py")
    model = mlflow.sklearn.load_model(str(identity["uri"]))
    gap = check_scores(staging, model)
    scorer = load_script(staging).Scorer(staging)
    latency: dict[str, float] = scorer.latency_ms(scorer.example_row(), runs)
    sizes = {name: (staging / name).stat().st_size for name in FILES[:-1]}
    (staging / "README.md").write_text(readme(schema, sizes, latency), encoding="utf-8")
    sizes["README.md"] = (staging / "README.md").stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    return {
        "out": str(out),
        "name": identity["name"],
        "version": identity["version"],
        "sizes": sizes,
        "total_bytes": sum(sizes.values()),
        "latency": latency,
        "max_difference": gap,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m <package>.serving.edge [--out DIR] [--latency-runs N]``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist") / "edge")
    parser.add_argument("--latency-runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.latency_runs < 1:
        sys.exit("error: --latency-runs must be at least 1")
    try:
        done = build(load_settings(), args.out, args.latency_runs)
    except (BundleError, OSError) as exc:
        sys.exit(f"error: {exc}")
    latency = done["latency"]
    print(
        f"{done['out']}: {done['name']} v{done['version']}, {done['total_bytes'] / 1024:.1f} KiB "
        f"(model.onnx {done['sizes']['model.onnx'] / 1024:.1f} KiB); single-row latency "
        f"median {latency['median_ms']:.3f} ms, p90 {latency['p90_ms']:.3f} ms "
        f"({int(latency['runs'])} calls); scores equal the champion's "
        f"(max difference {done['max_difference']:.1e})"
    )


if __name__ == "__main__":
    main()
