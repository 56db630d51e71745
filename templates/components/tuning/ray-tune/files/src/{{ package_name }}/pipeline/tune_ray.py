"""Stage `tune` with Ray Tune: local Ray, Optuna's TPE as the search algorithm.

Same search space, scoring and output as the Optuna stage (``tune.py``): the trials see
only the training part of the out-of-time split and are scored by cross-validation
grouped by customer. Each finished trial is an MLflow run nested under the ``tune`` run
(logged by :class:`TrialLogger`, a callback in the driver process, so the trial workers
never write to MLflow) and published to the stack's other trackers through
``platform/trackers.py`` (W&B, TensorBoard: one run per trial); the best parameters go to
``models/best_params.json``, which `train` reads, the search report to ``reports/tuning/``.
The budget is ``tune.n_trials`` of params.yaml; Ray runs on at most ``tune.num_cpus`` cores.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import Settings, load_settings
from ..telemetry import stage_entry
from .metrics import cv_score
from .train import split_holdout
from .tune import run as run_stage

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def _trainable(
    config: dict[str, Any], train: pd.DataFrame, folds: int, metric: str
) -> dict[str, float]:
    params = {"max_iter": int(config["max_iter"]), "C": float(config["C"]),
              "class_weight": config["class_weight"]}  # fmt: skip
    return {"score": cv_score(train, params, folds, metric)}


def trial_logger(settings: Settings, parent_id: str, metric: str) -> Any:
    """A Ray Tune callback logging each finished trial as an MLflow run under ``parent_id``
    and publishing it to the other trackers; its ``trials`` list what it logged."""
    import mlflow
    from ray.tune import Callback

    from ..platform.trackers import publish_run, run_tags

    class TrialLogger(Callback):
        def __init__(self) -> None:
            self.trials: list[dict[str, Any]] = []

        def on_trial_complete(
            self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
        ) -> None:
            score = (trial.last_result or {}).get("score")
            if score is None:
                return  # an errored trial: Ray reports it in the results
            number = len(self.trials)
            params = {key: trial.config[key] for key in ("C", "class_weight")}
            with mlflow.start_run(
                run_name=f"trial-{number}", nested=True, parent_run_id=parent_id
            ) as child:
                tags = {"stage": "tune", "tuner": "ray-tune", "trial": str(number),
                        "ray_trial_id": str(trial.trial_id)}  # fmt: skip
                mlflow.set_tags({**run_tags(settings), **tags})
                mlflow.log_params(params)
                mlflow.log_metric(f"cv_{metric}", float(score))
            publish_run(settings, child.info.run_id)
            self.trials.append({"number": number, "params": params, "value": float(score),
                                "run_id": child.info.run_id})  # fmt: skip

    return TrialLogger()


def tune(settings: Settings, frame: pd.DataFrame) -> dict[str, Any]:
    """Run the Ray Tune search on ``frame``'s training part; return the result."""
    import mlflow
    import ray
    from ray import tune as ray_tune
    from ray.tune.search.optuna import OptunaSearch

    from ..platform.trackers import publish_run, run_tags
    from ..platform.tracking import configure_tracking

    section = settings.params["tune"]
    n_trials = int(section["n_trials"])
    folds = int(section.get("cv_folds", 3))
    metric = str(settings.params.get("evaluate", {}).get("metric", "roc_auc"))
    max_iter = int(settings.params["train"].get("max_iter", 1000))
    train, _ = split_holdout(frame, float(settings.params["train"]["test_size"]))
    configure_tracking(settings)  # creates the experiment with the project's artifact root

    space = {
        "C": ray_tune.loguniform(
            float(section.get("C_min", 1e-3)), float(section.get("C_max", 100.0))
        ),
        "class_weight": ray_tune.choice([None, "balanced"]),
        "max_iter": max_iter,
    }
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    with mlflow.start_run(run_name="tune") as parent:
        mlflow.set_tags({**run_tags(settings), "tuner": "ray-tune"})
        mlflow.log_params({"n_trials": n_trials, "cv_folds": folds, "metric": metric})
        logger = trial_logger(settings, parent.info.run_id, metric)
        ray.init(num_cpus=int(section.get("num_cpus", 2)), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)  # fmt: skip
        try:
            tuner = ray_tune.Tuner(
                ray_tune.with_parameters(_trainable, train=train, folds=folds, metric=metric),
                param_space=space,
                tune_config=ray_tune.TuneConfig(
                    metric="score",
                    mode="max",
                    num_samples=n_trials,
                    search_alg=OptunaSearch(seed=int(section.get("seed", 42))),
                ),
                run_config=ray_tune.RunConfig(
                    name="tune",
                    storage_path=str(settings.paths.root / "logs" / "ray"),
                    verbose=0,
                    callbacks=[logger],
                ),
            )
            results = tuner.fit()
        finally:
            ray.shutdown()
        errors = [results[i].error for i in range(len(results)) if results[i].error]
        if len(errors) == len(results) or not logger.trials:
            raise RuntimeError(f"every Ray Tune trial failed: {errors[:1]}")
        best_trial = max(logger.trials, key=lambda trial: float(trial["value"]))
        mlflow.log_params({f"best_{k}": v for k, v in best_trial["params"].items()})
        mlflow.log_metric(f"best_cv_{metric}", float(best_trial["value"]))
    publish_run(settings, parent.info.run_id)
    params = {"max_iter": max_iter, "C": float(best_trial["params"]["C"]),
              "class_weight": best_trial["params"]["class_weight"]}  # fmt: skip
    return {
        "params": params,
        "metric": metric,
        f"cv_{metric}": round(float(best_trial["value"]), 6),
        "best_trial": best_trial["number"],
        "n_trials": n_trials,
        "failed_trials": len(errors),
        "cv_folds": folds,
        "n_train": len(train),
        "run_id": parent.info.run_id,
        "tuner": "ray-tune",
        "trials": logger.trials,
    }


def run(settings: Settings, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """The whole stage with Ray Tune: join features, tune, write ``models/best_params.json``."""
    return run_stage(settings, frame, tuner=tune)


@stage_entry("tune")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.tune_ray``."""
    result = run(load_settings())
    metric = result["metric"]
    print(
        f"tune (ray): best of {result['n_trials']} trials cv {metric} "
        f"{result[f'cv_{metric}']:.4f} with {result['params']}"
    )


if __name__ == "__main__":
    main()
