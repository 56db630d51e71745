"""Stage `monitor`: data and prediction drift of the current batch against training data.

Reference: the labelled history the model was trained on. Current: the newest batch.
Both are scored with the ``champion`` model, so the report covers the features and the
model's prediction (P(class 1) for a binary task, the predicted class for a multiclass
one, the predicted value for a regression). Evidently's ``DataDriftPreset`` picks a test
per column (Wasserstein / Jensen-Shannon distances on large data, K-S / chi-square p-values on
small data). Outputs: ``reports/drift.html`` and ``reports/drift.json`` (the Evidently
snapshot), ``reports/monitor.json`` (the summary the serving app exports to Prometheus),
all also logged as artifacts of an MLflow ``monitor`` run.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..config import MODEL_ALIAS, Settings, load_settings
from ..schema import FEATURE_COLUMNS, FEATURE_DTYPES, TASK
from ..telemetry import stage_entry

PREDICTION_COLUMN = "churn_probability"
# Integer features with at most this many distinct values are compared as categories.
MAX_CATEGORIES = 5


def categorical_columns(reference: pd.DataFrame) -> list[str]:
    """String features, and integer features with few distinct values (contract length,
    products, seniority)."""
    return [
        name
        for name, dtype in FEATURE_DTYPES.items()
        if dtype == "string"
        or (dtype.startswith("int") and reference[name].nunique() <= MAX_CATEGORIES)
    ]


def add_predictions(
    settings: Settings, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, int | None]:
    """Add the champion's churn probability to both frames; version None if no champion."""
    import mlflow
    import mlflow.sklearn

    from ..platform.tracking import champion, normalise_version

    version = champion(mlflow.MlflowClient(), settings.model_name)
    if version is None:
        return reference, current, None
    from .metrics import predictions

    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}@{MODEL_ALIAS}")

    def predicted(frame: pd.DataFrame) -> Any:
        values = predictions(model, frame[FEATURE_COLUMNS])
        return values.argmax(axis=1) if TASK == "multiclass" else values

    reference = reference.assign(**{PREDICTION_COLUMN: predicted(reference)})
    current = current.assign(**{PREDICTION_COLUMN: predicted(current)})
    return reference, current, normalise_version(version.version)


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5
) -> tuple[Any, dict[str, Any]]:
    """Run Evidently's data drift preset; return ``(snapshot, summary)``.

    The summary holds ``drift_share``, ``drifted_columns``, ``n_columns``,
    ``dataset_drift``, ``drifted_column_names`` and ``drift_scores`` {column: score}
    (each column's test, method and threshold are in the snapshot).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in (*FEATURE_COLUMNS, PREDICTION_COLUMN) if c in reference.columns]
    categorical = categorical_columns(reference)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in categorical],
        categorical_columns=categorical,
    )
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    result = snapshot.dict()
    per_column: dict[str, dict[str, Any]] = {}
    counted: dict[str, float] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            per_column[config["column"]] = {
                "score": float(metric["value"]),
                "method": config["method"],
                "threshold": config["threshold"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            counted = metric["value"]
    for test in result["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith(":ValueDrift") and params["column"] in per_column:
            per_column[params["column"]]["drifted"] = test["status"] == "FAIL"
    drifted = [name for name, info in per_column.items() if info.get("drifted")]
    if int(counted.get("count", len(drifted))) != len(drifted):
        raise RuntimeError(f"Evidently counted {counted} drifted columns but tests flag {drifted}")
    share = float(counted.get("share", len(drifted) / max(len(columns), 1)))
    summary = {
        "drift_share": round(share, 6),
        "drifted_columns": len(drifted),
        "n_columns": len(columns),
        "dataset_drift": share >= drift_share,
        "drift_share_threshold": drift_share,
        "drifted_column_names": drifted,
        "drift_scores": {name: round(info["score"], 6) for name, info in per_column.items()},
    }
    return snapshot, summary


def run(settings: Settings) -> dict[str, Any]:
    """The whole stage: score, compare, save the reports and log them to MLflow."""
    import mlflow

    from ..platform.tracking import configure_tracking

    paths = settings.paths
    reference = pd.read_parquet(paths.history, columns=FEATURE_COLUMNS)
    current = pd.read_parquet(paths.current, columns=FEATURE_COLUMNS)
    configure_tracking(settings)
    reference, current, champion_version = add_predictions(settings, reference, current)
    threshold = float(settings.params.get("monitor", {}).get("drift_share", 0.5))
    snapshot, summary = drift_report(reference, current, threshold)
    summary = {
        **summary,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "champion_version": champion_version,
    }
    paths.reports_dir.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(paths.drift_html))
    snapshot.save_json(str(paths.drift_json))
    paths.monitor_report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with mlflow.start_run(run_name="monitor"):
        mlflow.log_metrics(
            {
                "drift_share": summary["drift_share"],
                "drifted_columns": summary["drifted_columns"],
                "dataset_drift": float(summary["dataset_drift"]),
                **{f"drift_score_{k}": v for k, v in summary["drift_scores"].items()},
            }
        )
        mlflow.set_tag("champion_version", str(champion_version))
        for path in (paths.drift_html, paths.drift_json, paths.monitor_report):
            mlflow.log_artifact(str(path), artifact_path="drift")
    return summary


@stage_entry("monitor")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.monitor``."""
    summary = run(load_settings())
    print(
        f"monitor: {summary['drifted_columns']}/{summary['n_columns']} columns drifted "
        f"(share {summary['drift_share']:.3f}, dataset drift {summary['dataset_drift']}): "
        f"{', '.join(summary['drifted_column_names']) or 'none'}"
    )


if __name__ == "__main__":
    main()
