"""Stage `tune` with Ray Tune: local Ray, Optuna's TPE as the search algorithm.

Same search space, scoring and output as the Optuna stage (``tune.py``): the trials see
only the training part of the out-of-time split and are scored by cross-validation
grouped by customer. Each trial is an MLflow run (Ray's ``MLflowLoggerCallback``); the
best parameters go to ``models/best_params.json``, which `train` reads. The budget is
``tune.n_trials`` of params.yaml; Ray runs on at most ``tune.num_cpus`` cores.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ..config import EXPERIMENT_NAME, Settings, load_settings
from ..telemetry import stage_entry
from .train import split_holdout
from .tune import cv_score
from .tune import run as run_stage


def _trainable(
    config: dict[str, Any], train: pd.DataFrame, folds: int, metric: str
) -> dict[str, float]:
    params = {"max_iter": int(config["max_iter"]), "C": float(config["C"]),
              "class_weight": config["class_weight"]}  # fmt: skip
    return {"score": cv_score(train, params, folds, metric)}


def tune(settings: Settings, frame: pd.DataFrame) -> dict[str, Any]:
    """Run the Ray Tune search on ``frame``'s training part; return the result."""
    import ray
    from ray import tune as ray_tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

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
                callbacks=[
                    MLflowLoggerCallback(
                        tracking_uri=settings.tracking_uri,
                        experiment_name=EXPERIMENT_NAME,
                        tags={"stage": "tune", "tuner": "ray-tune"},
                        save_artifact=False,
                    )
                ],
            ),
        )
        results = tuner.fit()
        best = results.get_best_result()
    finally:
        ray.shutdown()
    errors = [results[i].error for i in range(len(results)) if results[i].error]
    if len(errors) == len(results):
        raise RuntimeError(f"every Ray Tune trial failed: {errors[0]}")
    config, metrics = best.config or {}, best.metrics or {}
    params = {"max_iter": max_iter, "C": float(config["C"]),
              "class_weight": config["class_weight"]}  # fmt: skip
    score = float(metrics["score"])
    return {
        "params": params,
        "metric": metric,
        f"cv_{metric}": round(score, 6),
        "best_trial": str(best.path).rsplit("/", 1)[-1],
        "n_trials": n_trials,
        "failed_trials": len(errors),
        "cv_folds": folds,
        "n_train": len(train),
        "tuner": "ray-tune",
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
