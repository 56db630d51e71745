"""Stage `evaluate`: champion/challenger on the holdout, then move the ``champion`` alias.

The candidate is the version `train` just registered (``models/train.json``). It and the
current ``champion`` are scored on the same out-of-time holdout; the alias moves to the
candidate only if it beats the champion by more than ``evaluate.min_improvement`` (the
first model always wins). The decision goes to ``reports/evaluate.json`` and an MLflow
``evaluate`` run.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..config import MODEL_ALIAS, Settings, load_settings
from ..schema import FEATURE_COLUMNS, LABEL_COLUMN, TASK
from ..telemetry import stage_entry


def score_version(
    model_name: str, version: int, holdout: pd.DataFrame, metric: str
) -> dict[str, float]:
    """Load ``model_name`` version ``version`` from the registry; its ``metric`` (and ROC
    AUC for a binary task)."""
    import mlflow.sklearn

    from .metrics import predictions, score

    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    predicted = predictions(model, holdout[FEATURE_COLUMNS])
    y_true = holdout[LABEL_COLUMN]
    names = {metric, "roc_auc"} if TASK == "binary" else {metric}
    return {name: score(name, y_true, predicted) for name in names}


def _rounded(scores: dict[str, float] | None, key: str) -> float | None:
    return None if scores is None else round(scores[key], 6)


def evaluate_candidate(
    settings: Settings, candidate_version: int, holdout: pd.DataFrame
) -> dict[str, Any]:
    """Compare ``candidate_version`` with the champion on ``holdout``; promote if better.

    Returns the report written to ``reports/evaluate.json``.
    """
    import mlflow

    from ..platform.trackers import publish_run, run_tags
    from ..platform.tracking import champion, configure_tracking, normalise_version
    from .metrics import TASK_METRICS, gain

    configure_tracking(settings)
    client = mlflow.MlflowClient()
    name = settings.model_name
    section = settings.params.get("evaluate", {})
    metric = str(section.get("metric", TASK_METRICS[TASK][0]))
    min_improvement = float(section.get("min_improvement", 0.0))

    candidate = score_version(name, candidate_version, holdout, metric)
    before = champion(client, name)
    before_version = None if before is None else normalise_version(before.version)
    if before_version is None:
        champion_scores: dict[str, float] | None = None
        promoted, reason = True, "no champion yet"
    elif before_version == candidate_version:
        champion_scores = candidate
        promoted, reason = False, "candidate is already the champion"
    else:
        champion_scores = score_version(name, before_version, holdout, metric)
        margin = gain(metric, candidate[metric], champion_scores[metric])
        promoted = margin > min_improvement
        reason = (
            f"{metric} {'+' if margin >= 0 else ''}{margin:.4f} vs v{before_version} "
            f"({'>' if promoted else '<='} min_improvement {min_improvement})"
        )
    if promoted:
        client.set_registered_model_alias(name, MODEL_ALIAS, str(candidate_version))
    champion_version = candidate_version if promoted else before_version
    client.set_model_version_tag(
        name, str(candidate_version), f"evaluate_{metric}", f"{candidate[metric]:.6f}"
    )

    report: dict[str, Any] = {
        "model_name": name,
        "metric": metric,
        "holdout_rows": len(holdout),
        "candidate_version": candidate_version,
        "candidate_score": round(candidate[metric], 6),
        "champion_version_before": before_version,
        "champion_score_before": _rounded(champion_scores, metric),
        "promoted": promoted,
        "reason": reason,
        "champion_version": champion_version,
    }
    if TASK == "binary":
        report["candidate_auc"] = round(candidate["roc_auc"], 6)
        report["champion_auc_before"] = _rounded(champion_scores, "roc_auc")
    with mlflow.start_run(run_name="evaluate") as run:
        mlflow.set_tags(run_tags(settings))
        mlflow.log_params(
            {"candidate_version": candidate_version, "champion_version_before": before_version}
        )
        mlflow.log_metrics(
            {
                f"candidate_{metric}": candidate[metric],
                "promoted": float(promoted),
                **(
                    {}
                    if champion_scores is None
                    else {f"champion_{metric}_before": champion_scores[metric]}
                ),
            }
        )
        mlflow.set_tag("champion_version", str(champion_version))
    publish_run(settings, run.info.run_id, {"evaluation_report": report})
    return report


def _require_version(settings: Settings, version: int) -> None:
    """Fail clearly when ``models/train.json`` names a version this registry doesn't have.

    That happens when the DVC outputs came from elsewhere (``dvc pull``, another clone)
    but the MLflow store did not: retrain to register a version here.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..platform.tracking import configure_tracking

    configure_tracking(settings)
    try:
        mlflow.MlflowClient().get_model_version(settings.model_name, str(version))
    except MlflowException as error:
        raise SystemExit(
            f"evaluate: {settings.model_name} v{version} (from {settings.paths.train_report.name})"
            f" is not in the registry at {settings.tracking_uri}; "
            "retrain it here: `dvc repro --force --single-item train && dvc repro`"
        ) from error


def run(settings: Settings) -> dict[str, Any]:
    """The whole stage: read train's report and holdout, evaluate, write the report."""
    trained = json.loads(settings.paths.train_report.read_text(encoding="utf-8"))
    holdout = pd.read_parquet(settings.paths.holdout)
    version = int(trained["model_version"])
    _require_version(settings, version)
    report = evaluate_candidate(settings, version, holdout)
    settings.paths.reports_dir.mkdir(parents=True, exist_ok=True)
    settings.paths.evaluate_report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


@stage_entry("evaluate")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.evaluate``."""
    report = run(load_settings())
    verdict = "promoted to" if report["promoted"] else "not promoted;"
    print(
        f"evaluate: v{report['candidate_version']} {report['metric']} "
        f"{report['candidate_score']:.4f} {verdict} {MODEL_ALIAS} = v{report['champion_version']} "
        f"({report['reason']})"
    )


if __name__ == "__main__":
    main()
