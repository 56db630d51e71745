"""The two seams of the serving app: where the model comes from and where features come from.

``create_app`` takes a *model loader* (a callable returning a :class:`LoadedModel`) and a
*feature lookup* (a callable mapping customer ids to a feature frame). Production wires
in :func:`mlflow_model_loader` and :class:`FeastFeatureLookup`; tests inject a tiny
in-memory model and a fake lookup. The serving process never imports MLflow (a
subprocess fetches the model, see :mod:`.fetch_model`) and imports Feast only when the
lookup opens the store, so importing this module (and the tests) stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import pickle  # nosec B403 - only the champion this project's pipeline logged
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..config import MODEL_ALIAS, Settings
from ..schema import (
    CATEGORICAL_FEATURES,
    ENTITY_COLUMN,
    FEATURE_COLUMNS,
    FEATURE_DTYPES,
    NULLABLE_FEATURES,
    TASK,
)
from .outputs import model_scores, raw_scorer

if TYPE_CHECKING:  # pandas costs ~80 MB: imported by the by-id path and sklearn models only
    import pandas as pd

logger = logging.getLogger(__name__)

RUNTIMES = ("onnx", "sklearn")
"""``SERVING_RUNTIME``: how the worker scores the champion (see :func:`mlflow_model_loader`)."""
ONNX_INPUT = "input"
"""Name of the ONNX graph's input: float64 ``[n, len(FEATURE_COLUMNS)]``."""
ONNX_OUTPUT = "variable" if TASK == "regression" else "probabilities"
"""Name of the ONNX graph's output: float64 ``[n, classes]``, like ``predict_proba``
(classifiers), or ``[n, 1]`` predicted values (regression, skl2onnx's name for them)."""

ProbabilityFn = Callable[[Any], Any]
"""Maps a feature frame (or, with ``array_input``, a float64 array) to the model's raw
output: ``predict_proba``'s (n, classes) for classifiers, ``predict``'s values for
regression (:func:`.outputs.model_scores` shapes it for the task)."""

FEATURE_NAMES_WARNING = "X does not have valid feature names"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score feature frames, with the registry identity it came from."""

    name: str
    version: str
    predict_proba: ProbabilityFn
    alias: str = MODEL_ALIAS
    run_id: str | None = None
    array_input: bool = False
    """True when ``predict_proba`` takes a float64 array with FEATURE_COLUMNS in order.

    sklearn spends ~0.5 ms per call validating a DataFrame's columns; the serving path
    skips the DataFrame when the model was fitted on exactly these columns."""

    created_at: float | None = None
    """Unix time the registry created this model version (``model_created_timestamp_seconds``,
    for the staleness alert); None when the loader does not know it."""

    runtime: str = "python"
    """What scores: ``onnx`` (ONNX Runtime), ``sklearn`` (the unpickled estimator) or
    ``python`` (any other callable, e.g. a test's fake)."""

    def predict(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Return the scores of every row of ``features`` (float64, see :mod:`.outputs`).

        Binary: the churn probability, ``(n,)``; multiclass: ``(n, classes)``
        probabilities; regression: the predicted values, ``(n,)``.
        """
        return model_scores(self.predict_proba(features), len(features))


ModelLoader = Callable[[], LoadedModel]
FeatureLookup = Callable[[list[int]], "pd.DataFrame"]
"""Maps customer ids to a frame with ``customer_id`` + FEATURE_COLUMNS (NaN when unknown)."""


@runtime_checkable
class WarmableLookup(Protocol):
    """A feature lookup that can open its backing store ahead of the first request."""

    def __call__(self, customer_ids: list[int]) -> pd.DataFrame:
        """Return the online features of ``customer_ids``."""
        ...

    def warm_up(self) -> None:
        """Open the store now so the first request does not pay for it."""
        ...


def model_input(model: LoadedModel, columns: dict[str, np.ndarray]) -> pd.DataFrame | np.ndarray:
    """Typed feature columns (FEATURE_COLUMNS order) in the form ``model`` is called with.

    One ``(n, n_features)`` float64 array for models with ``array_input`` (pandas is not
    imported), else a DataFrame of the columns.
    """
    if model.array_input:
        return np.column_stack(
            [np.asarray(columns[name], dtype=np.float64) for name in FEATURE_COLUMNS]
        )
    import pandas as pd

    frame = pd.DataFrame(columns)
    if CATEGORICAL_FEATURES:  # text columns (object arrays) as the training dtype
        frame = frame.astype(dict.fromkeys(CATEGORICAL_FEATURES, "string"))
    return frame


def array_dtype(dtype: str) -> Any:
    """The numpy dtype holding a feature of contract ``dtype`` (text: object)."""
    return object if dtype == "string" else dtype


def warmup_input(model: LoadedModel, rows: int = 1) -> pd.DataFrame | np.ndarray:
    """All-zero input of ``rows`` rows (training dtypes) in the form ``model`` is called with.

    A category is missing (None) in it: the model's imputer fills it in.
    """
    zeros = {
        name: np.zeros(rows, dtype=dtype) if dtype != "string" else np.full(rows, None)
        for name, dtype in FEATURE_DTYPES.items()
    }
    return model_input(model, zeros)


def inline_row_limit(model: LoadedModel, budget_seconds: float, max_rows: int) -> int:
    """Largest batch whose measured ``predict`` time fits ``budget_seconds`` (0: none does).

    Times the model on 1 and ``max_rows`` all-zero rows (best of 3) and interpolates
    linearly: batches up to the returned size are scored on the event loop, bigger ones
    in a worker thread, so a slow call never stalls the other connections.
    """

    def best_of_three(rows: int) -> float:
        sample = warmup_input(model, rows)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            model.predict(sample)
            timings.append(time.perf_counter() - started)
        return min(timings)

    one = best_of_three(1)
    if one > budget_seconds:
        return 0
    if max_rows <= 1:
        return max_rows
    per_row = max(best_of_three(max_rows) - one, 0.0) / (max_rows - 1)
    if per_row == 0.0:
        return max_rows
    return min(max_rows, 1 + int((budget_seconds - one) / per_row))


def accepts_feature_array(model: Any) -> bool:
    """Whether ``model`` can score a float64 array with FEATURE_COLUMNS in order.

    True for sklearn estimators fitted on a DataFrame with exactly FEATURE_COLUMNS, in
    this order (``feature_names_in_``), all numbers. Installs a filter for sklearn's "no feature
    names" warning, which is then harmless: the column order was checked here, once.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != FEATURE_COLUMNS or CATEGORICAL_FEATURES:
        return False  # categories are text: they never fit a float64 array
    warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING, category=UserWarning)
    return True


def align_features(
    features: pd.DataFrame, customer_ids: list[int]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Order a lookup result like ``customer_ids`` and tell which rows can be scored.

    Returns the feature frame (FEATURE_COLUMNS, one row per requested id, in request
    order, duplicates allowed) and a boolean mask of the rows :func:`scorable` (an
    unknown id has no feature at all). Works whatever order the lookup returned its rows
    in.
    """
    import pandas as pd

    missing = [c for c in (ENTITY_COLUMN, *FEATURE_COLUMNS) if c not in features.columns]
    if missing:
        raise ValueError(f"feature lookup returned no column(s) {missing}")
    indexed = features.drop_duplicates(subset=ENTITY_COLUMN, keep="last").set_index(ENTITY_COLUMN)
    ordered = indexed.reindex(pd.Index(customer_ids, dtype="int64"))[FEATURE_COLUMNS]
    return ordered.reset_index(drop=True), scorable(ordered)


REQUIRED_FEATURES = [name for name in FEATURE_COLUMNS if name not in NULLABLE_FEATURES]
"""The features the contract says always have a value (the model imputes the others)."""


def scorable(features: pd.DataFrame) -> np.ndarray:
    """Which feature rows the model can score: every one of :data:`REQUIRED_FEATURES` is
    present, and at least one feature is (the model pipeline imputes
    ``schema.NULLABLE_FEATURES``; a row with no feature at all is an unknown id)."""
    present = features[FEATURE_COLUMNS].notna()
    mask: np.ndarray = (present[REQUIRED_FEATURES].all(axis=1) & present.any(axis=1)).to_numpy()
    return mask


def to_model_frame(
    features: pd.DataFrame, model: LoadedModel | None = None
) -> pd.DataFrame | np.ndarray:
    """Complete feature rows in the form ``model`` is called with.

    A float64 array (FEATURE_COLUMNS order) for models with ``array_input``, else a frame
    cast to the training dtypes of ``schema.FEATURE_DTYPES``.
    """
    if model is not None and model.array_input:
        return features[FEATURE_COLUMNS].to_numpy(dtype=np.float64)
    return features[FEATURE_COLUMNS].astype(FEATURE_DTYPES)


FETCH_TIMEOUT_SECONDS = 300.0


def fetch_champion(
    settings: Settings, out: Path, timeout: float, runtime: str = "onnx", alias: str = MODEL_ALIAS
) -> dict[str, Any]:
    """Run ``python -m <package>.serving.fetch_model`` to write ``alias``'s model under ``out``.

    MLflow runs in that short-lived subprocess, never in the serving worker. It inherits
    this process's environment (registry and artifact-store credentials) and cwd.
    """
    command = [
        sys.executable,
        "-m",
        f"{__package__}.fetch_model",
        "--tracking-uri",
        settings.tracking_uri,
        "--model-name",
        settings.model_name,
        "--out",
        str(out),
        "--runtime",
        runtime,
        "--alias",
        alias,
    ]
    try:
        done = subprocess.run(
            command,
            env={"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **os.environ},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"fetching the champion took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        detail = (errors or lines or [f"exit code {done.returncode}"])[-1]
        raise RuntimeError(f"fetch_model failed: {detail.removeprefix('error: ')}")
    fetched: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return fetched


def onnx_predict_proba(onnx_model: bytes) -> ProbabilityFn:
    """``predict_proba`` of an ONNX graph (``ONNX_INPUT`` -> ``ONNX_OUTPUT``) on ONNX Runtime.

    The session runs on one thread: for a few rows of a linear model the thread pool's
    hand-offs cost more than they save, and the app already scores concurrent requests
    on several threads. Takes a float64 array in FEATURE_COLUMNS order (or a frame with
    those columns, converted here).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        onnx_model, sess_options=options, providers=["CPUExecutionProvider"]
    )
    run = session.run
    outputs = [ONNX_OUTPUT]

    def predict_proba(features: Any) -> Any:
        if hasattr(features, "columns"):  # a DataFrame: pick and order the model's columns
            features = features[FEATURE_COLUMNS].to_numpy(dtype=np.float64)
        array = np.ascontiguousarray(features, dtype=np.float64)
        return run(outputs, {ONNX_INPUT: array})[0]

    return predict_proba


def serving_runtime(runtime: str | None = None) -> str:
    """``runtime`` or ``SERVING_RUNTIME`` (default ``onnx``), checked against RUNTIMES."""
    chosen = runtime or os.environ.get("SERVING_RUNTIME") or "onnx"
    if chosen not in RUNTIMES:
        raise ValueError(f"SERVING_RUNTIME must be one of {', '.join(RUNTIMES)}; got {chosen!r}")
    return chosen


def mlflow_model_loader(
    settings: Settings,
    *,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    runtime: str | None = None,
    alias: str = MODEL_ALIAS,
) -> ModelLoader:
    """Return a loader of the ``alias`` (default ``champion``) version of ``settings.model_name``.

    The alias is resolved once, then that exact version is loaded, so the version the
    app reports is the version it scores with even if the alias moves meanwhile. MLflow
    does that in a subprocess (:mod:`.fetch_model`) that hands the model over in a
    private temporary directory, deleted once loaded.

    ``runtime`` (``SERVING_RUNTIME``, default ``onnx``): with ``onnx`` the subprocess
    converts the sklearn model to ONNX, checks that both agree on sample rows, and this
    process scores with ONNX Runtime, importing neither scikit-learn, SciPy nor pandas
    (about 130 MB less memory). A model that cannot be converted, or whose conversion
    disagrees, is served with sklearn instead, and the reason logged in one line. With
    ``sklearn`` the estimator itself is unpickled here.
    """
    chosen = serving_runtime(runtime)

    def load() -> LoadedModel:
        logger.info(
            "fetching %s@%s from %s", settings.model_name, alias, settings.tracking_uri
        )
        with tempfile.TemporaryDirectory(prefix="serving-model-") as scratch:
            fetched = fetch_champion(settings, Path(scratch), timeout, chosen, alias)
            payload = Path(fetched["path"]).read_bytes()
        if fetched.get("fallback"):
            logger.warning("serving with sklearn, not ONNX: %s", fetched["fallback"])
        name, version, run_id = str(fetched["name"]), str(fetched["version"]), fetched.get("run_id")
        created_ms = fetched.get("created_ms")
        created_at = float(created_ms) / 1000 if created_ms else None
        if fetched.get("runtime") == "onnx":
            return LoadedModel(
                name=name,
                version=version,
                predict_proba=onnx_predict_proba(payload),
                alias=alias,
                run_id=run_id,
                created_at=created_at,
                array_input=True,
                runtime="onnx",
            )
        # Written by fetch_model from the registry's model, into a directory only this
        # user can write: the same trust as MLflow's own loader.
        # The pickle comes from fetch_model, which reads the project's own registry.
        model = pickle.loads(payload)  # nosec B301
        return LoadedModel(
            name=name,
            version=version,
            predict_proba=raw_scorer(model),
            alias=alias,
            run_id=run_id,
            created_at=created_at,
            array_input=accepts_feature_array(model),
            runtime="sklearn",
        )

    return load


class FeastFeatureLookup:
    """Online features from the project's Feast store, opened once and shared by requests."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        with self._lock:
            if self._store is None:
                from ..platform.feature_store import open_store

                self._store = open_store(self._settings)
            return self._store

    def warm_up(self) -> None:
        """Import Feast and open the feature store (~7 s the first time)."""
        self._open()

    def __call__(self, customer_ids: list[int]) -> pd.DataFrame:
        """Read the features of ``customer_ids`` in one online-store lookup."""
        from ..platform.feature_store import online_features

        return online_features(self._open(), customer_ids)
