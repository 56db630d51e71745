"""Stage `tune`: Optuna search of the model's hyper-parameters, every trial an MLflow run.

The search only sees the training part of the out-of-time split (the holdout stays
untouched for `evaluate`) and scores each trial by cross-validation grouped by customer,
so snapshots of one customer never sit on both sides of a fold. Each trial is also
published to the stack's other trackers (``platform/trackers.py``: one run per trial). The
best parameters go to ``models/best_params.json``, which `train` reads; the search report
(best trial, parameter importance, a plot) to ``reports/tuning/`` (:mod:`.tune_report`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import Settings, load_settings
from ..schema import TASK
from ..telemetry import stage_entry
from .metrics import LOWER_IS_BETTER, TASK_METRICS, cv_score
from .train import load_training_frame, split_holdout
from .tune_report import write_report

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.Trial, section: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters of one trial: C (log scale) and class_weight; the rest from ``base``."""
    return {
        **base,
        "C": trial.suggest_float(
            "C", float(section.get("C_min", 1e-3)), float(section.get("C_max", 100.0)), log=True
        ),
        "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
    }


def tune(settings: Settings, frame: pd.DataFrame) -> dict[str, Any]:
    """Run the study on ``frame``'s training part, logging to MLflow; return the result."""
    import mlflow
    import optuna

    from ..platform.trackers import publish_run, run_tags
    from ..platform.tracking import configure_tracking

    section = settings.params["tune"]
    n_trials = int(section["n_trials"])
    folds = int(section.get("cv_folds", 3))
    metric = str(settings.params.get("evaluate", {}).get("metric", TASK_METRICS[TASK][0]))
    base = {"max_iter": int(settings.params["train"].get("max_iter", 1000))}
    train, _ = split_holdout(frame, float(settings.params["train"]["test_size"]))

    configure_tracking(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=int(section.get("seed", 42)))
    lower = metric in LOWER_IS_BETTER
    study = optuna.create_study(
        direction="minimize" if lower else "maximize", sampler=sampler, study_name="tune"
    )

    trials: list[dict[str, Any]] = []
    with mlflow.start_run(run_name="tune") as parent:
        mlflow.set_tags(run_tags(settings))
        mlflow.log_params({"n_trials": n_trials, "cv_folds": folds, "metric": metric})

        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial, section, base)
            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True) as child:
                mlflow.set_tags({**run_tags(settings), "stage": "tune", "trial": trial.number})
                mlflow.log_params(trial.params)
                value = cv_score(train, params, folds, metric)
                mlflow.log_metric(f"cv_{metric}", value)
            publish_run(settings, child.info.run_id)
            trials.append({"number": trial.number, "params": dict(trial.params),
                           "value": value, "run_id": child.info.run_id})  # fmt: skip
            return value

        study.optimize(objective, n_trials=n_trials)
        best = {**base, **study.best_trial.params}
        mlflow.log_params({f"best_{k}": v for k, v in study.best_trial.params.items()})
        mlflow.log_metric(f"best_cv_{metric}", study.best_value)
    publish_run(settings, parent.info.run_id)
    return {
        "params": best,
        "metric": metric,
        f"cv_{metric}": round(study.best_value, 6),
        "best_trial": study.best_trial.number,
        "n_trials": n_trials,
        "cv_folds": folds,
        "n_train": len(train),
        "run_id": parent.info.run_id,
        "tuner": "optuna",
        "trials": trials,
    }


def run(
    settings: Settings,
    frame: pd.DataFrame | None = None,
    tuner: Callable[[Settings, pd.DataFrame], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole stage: join features, tune (Optuna unless ``tuner`` is given), write
    ``models/best_params.json`` and the search report (``reports/tuning/``).

    ``tuner`` returns the best parameters and, under ``trials``, every trial's number,
    params, score and MLflow run id; the trials go to the report, not to best_params.json.
    """
    frame = load_training_frame(settings) if frame is None else frame
    result = dict((tuner or tune)(settings, frame))
    write_report(settings, result, result.pop("trials"))
    settings.paths.best_params.parent.mkdir(parents=True, exist_ok=True)
    settings.paths.best_params.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


@stage_entry("tune")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.tune``."""
    result = run(load_settings())
    metric = result["metric"]
    print(
        f"tune: best of {result['n_trials']} trials (#{result['best_trial']}) "
        f"cv {metric} {result[f'cv_{metric}']:.4f} with {result['params']}"
    )


if __name__ == "__main__":
    main()
