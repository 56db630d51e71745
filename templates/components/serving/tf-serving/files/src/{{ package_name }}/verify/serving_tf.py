"""Verify steps of the TensorFlow Serving application (``serving=tf-serving``).

No ``tensorflow_model_server`` installs on a machine without Docker (PyPI, apt and npm
have none), so ``make verify`` proves everything up to the server and says so: the
champion exported as a SavedModel with ``models.config`` (:mod:`..serving.tf_export`,
built in ``.venv-tf-serving``); ``saved_model_cli show`` lists the ``serving_default``
signature with one input per feature and the task's outputs; ``saved_model_cli run`` on
the snapshot rows gives the champion's scores computed offline with MLflow within
:data:`TOLERANCE` (the graph computes in float64), and labels consistent with them;
``models.config`` and ``monitoring.config`` parse with TF Serving's protos and the REST
``:predict`` body of those rows fits the signature (malformed bodies do not). The server
itself runs in the compose stack (``tensorflow/serving``), which ``make verify`` does not
start.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ..schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, LABEL_CLASSES, TASK
from ..serving import outputs
from ..serving.tf_export import BUILDER, ENVIRONMENT, export, linear_spec, tf_env, tf_python
from .runner import Context, Flag, StepFailed
from .serving_app import TOLERANCE, compare_scores, feature_rows, offline_scores

#: The command-line flags of this module's steps (none; see :class:`.runner.Flag`).
FLAGS: tuple[Flag, ...] = ()
SERVER_IMAGE = "tensorflow/serving:2.21.0"
"""The base image of the compose stack's ``serving`` service (docker/serving-tf.Dockerfile)."""


def _tf(ctx: Context, *args: str, timeout: float = 600) -> str:
    """Run a command of ``.venv-tf-serving``; its stdout, or StepFailed with its last line."""
    done = subprocess.run(
        list(args), capture_output=True, text=True, env=tf_env(), timeout=timeout, check=False,
        cwd=ctx.root,
    )  # fmt: skip
    (ctx.logs_dir / "tf-serving.log").open("a", encoding="utf-8").write(
        f"$ {' '.join(args)}\n{done.stdout}\n{done.stderr}\n"
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise StepFailed(f"{Path(args[0]).name} exited {done.returncode}: {last[:300]}")
    return done.stdout


def step_export(ctx: Context, client: httpx.Client) -> str:
    """Export the champion: SavedModel ``<name>/<version>/`` and ``models.config``."""
    import mlflow.sklearn

    try:
        tf_python(ctx.root)
    except SystemExit as exc:
        raise StepFailed(str(exc).removeprefix("error: ")) from None
    ctx.logs["tf-serving"] = ctx.logs_dir / "tf-serving.log"
    name, version = ctx.settings.model_name, ctx.values["champion"]
    mlflow.set_tracking_uri(ctx.values["tracking_uri"])
    model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    linear_spec(model)  # refuses an unsupported champion before TensorFlow starts
    out = ctx.root / "build" / "verify-tf-serving"
    shutil.rmtree(out, ignore_errors=True)
    try:
        model_dir = export(ctx.root, model, name, version, out, str(out))
    except RuntimeError as exc:
        raise StepFailed(str(exc)) from None
    found = sorted(p.name for p in model_dir.iterdir())
    if "saved_model.pb" not in found or not (model_dir / "variables").is_dir():
        raise StepFailed(f"{model_dir} holds {found}, not saved_model.pb + variables/")
    ctx.values["tf_out"], ctx.values["tf_model_dir"] = out, model_dir
    size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    return f"{model_dir.relative_to(ctx.root)} ({', '.join(found)}; {size / 1024:.0f} KiB)"


def signature_of(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``saved_model_cli show --signature_def`` output as (inputs, outputs): name -> dtype."""
    inputs_part, _, outputs_part = text.partition("output(s):")
    pattern = re.compile(r"(?:inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)")
    return dict(pattern.findall(inputs_part)), dict(pattern.findall(outputs_part))


def expected_inputs() -> dict[str, str]:
    """One input per feature: DT_STRING for a category, DT_DOUBLE for a number."""
    return {n: "DT_STRING" if n in CATEGORICAL_FEATURES else "DT_DOUBLE" for n in FEATURE_COLUMNS}


def step_show(ctx: Context, client: httpx.Client) -> str:
    """``saved_model_cli show``: the signature's inputs are the features, outputs the task's."""
    from .core import N_CUSTOMERS, newest_snapshots

    ctx.values["snapshots"] = newest_snapshots(ctx, N_CUSTOMERS)
    cli = str(ctx.root / ENVIRONMENT / "bin" / "saved_model_cli")
    text = _tf(ctx, cli, "show", "--dir", str(ctx.values["tf_model_dir"]), "--tag_set", "serve",
               "--signature_def", "serving_default")  # fmt: skip
    inputs, outputs_found = signature_of(text)
    if inputs != expected_inputs():
        raise StepFailed(f"signature inputs {inputs}, expected {expected_inputs()}")
    if sorted(outputs_found) != sorted(outputs.OUTPUT_FIELDS):
        raise StepFailed(f"signature outputs {outputs_found}, expected {outputs.OUTPUT_FIELDS}")
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(outputs_found.items()))
    return f"serving_default: {len(inputs)} inputs (the features), outputs {shown}"


def _input_files(rows: list[dict[str, Any]], folder: Path) -> str:
    """One ``.npy`` per feature (NaN / empty string for missing): ``--inputs`` of the CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for name in FEATURE_COLUMNS:
        if name in CATEGORICAL_FEATURES:
            array = np.asarray(["" if r[name] is None else str(r[name]) for r in rows], dtype=str)
        else:
            array = np.asarray([np.nan if r[name] is None else r[name] for r in rows], np.float64)
        np.save(folder / f"{name}.npy", array)
        parts.append(f"{name}={folder / f'{name}.npy'}")
    return ";".join(parts)


def _check_labels(scores: np.ndarray, labels: np.ndarray, threshold: float) -> None:
    """The label output agrees with the scores (threshold, or the most probable class)."""
    if TASK == "binary":
        expected: list[Any] = (scores >= threshold).tolist()
        found: list[Any] = labels.astype(bool).tolist()
    else:
        expected = [LABEL_CLASSES[i] for i in np.argmax(scores, axis=1).tolist()]
        found = [v.decode() if isinstance(v, bytes) else str(v) for v in labels.tolist()]
    if found != expected:
        raise StepFailed(f"label output {found} disagrees with the scores ({expected})")


def step_run(ctx: Context, client: httpx.Client) -> str:
    """``saved_model_cli run`` on the snapshot rows equals the champion's offline scores."""
    rows = feature_rows(ctx)
    work = ctx.values["tf_out"] / "run"
    cli = str(ctx.root / ENVIRONMENT / "bin" / "saved_model_cli")
    _tf(ctx, cli, "run", "--dir", str(ctx.values["tf_model_dir"]), "--tag_set", "serve",
        "--signature_def", "serving_default", "--inputs", _input_files(rows, work / "inputs"),
        "--outdir", str(work / "outputs"), "--overwrite")  # fmt: skip
    scores = np.load(work / "outputs" / f"{outputs.SCORE_FIELD}.npy", allow_pickle=False)
    shaped = outputs.model_scores(scores, len(rows))
    spec = json.loads((ctx.values["tf_out"] / "spec.json").read_text(encoding="utf-8"))
    if outputs.LABEL_FIELD:
        labels = np.load(work / "outputs" / f"{outputs.LABEL_FIELD}.npy", allow_pickle=True)
        _check_labels(shaped, labels, float(spec["threshold"]))
    served = [float(s) for s in shaped.reshape(-1)]
    offline = compare_scores(served, offline_scores(ctx, rows), "SavedModel scores")
    return f"{len(rows)} rows through saved_model_cli run: {offline} (tolerance {TOLERANCE:g})"


def step_rest_body(ctx: Context, client: httpx.Client) -> str:
    """``models.config`` parses with TF Serving's protos; the REST body fits the signature."""
    rows_path = ctx.values["tf_out"] / "rows.json"
    rows_path.write_text(json.dumps(feature_rows(ctx)), encoding="utf-8")
    text = _tf(ctx, str(tf_python(ctx.root)), str(ctx.root / BUILDER), "check",
               str(ctx.values["tf_out"]), "--rows", str(rows_path))  # fmt: skip
    found = json.loads(text.strip().splitlines()[-1])
    name, version = ctx.settings.model_name, int(ctx.values["champion"])
    if found["name"] != name or found["versions"] != [version]:
        raise StepFailed(
            f"models.config serves {found['name']} {found['versions']}, not v{version}"
        )
    if found["inputs"] != expected_inputs() or sorted(found["outputs"]) != sorted(
        outputs.OUTPUT_FIELDS
    ):
        raise StepFailed(f"signature read back: {found['inputs']} -> {found['outputs']}")
    if found["body_problems"]:
        raise StepFailed(f"the REST body of the rows does not fit: {found['body_problems']}")
    let_through = [label for label, problems in found["refused"].items() if not problems]
    if let_through:
        raise StepFailed(f"malformed REST bodies not caught: {let_through}")
    return (
        f"models.config: {name} v{version} at {found['base_path']} (ModelServerConfig), "
        f"monitoring.config parsed; REST body of {len(feature_rows(ctx))} rows "
        f"({found['body_bytes']} bytes) fits serving_default; refused: "
        f"{', '.join(found['refused'])}"
    )


def step_server(ctx: Context, client: httpx.Client) -> str:
    """Say which checks did not run here: the TF Serving server (no binary on this machine)."""
    binary = shutil.which("tensorflow_model_server")
    where = f"found at {binary}, not started by verify" if binary else "not on PATH"
    return (
        f"skipped here: tensorflow_model_server ({where}: PyPI, apt and npm carry no build); "
        f"REST :predict, readiness and /metrics run in the compose "
        f"stack's serving service ({SERVER_IMAGE}, make up)"
    )
