"""W&B Sweeps: the search space of params.yaml as a sweep configuration, and its trial.

``python -m <package>.pipeline.sweep`` (the `sweep` stage of dvc.yaml) writes
``wandb-sweeps/sweep.yaml`` from params.yaml: the ``tune`` section's range of ``C`` (log-uniform)
and ``class_weight`` (none or balanced), the metric the `tune` stage maximises, Bayesian
search. Teams that run online start it with ``wandb sweep wandb-sweeps/sweep.yaml`` and
``wandb agent --count <n_trials> <sweep id>``; each agent run calls this module with
``--trial --C=... --class_weight=...``, which scores the parameters exactly as a `tune`
trial does (cross-validation grouped by customer on the training part) and logs the score
to the sweep's W&B run and to MLflow.

A sweep cannot run offline: ``wandb sweep`` creates the sweep on the W&B server and the
agent (even with the local controller) reads its runs from there. Offline, the tests
validate this file with the ``sweeps`` library's own schema and draw its next runs locally
with ``sweeps.next_run`` (the algorithm the W&B server runs).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from ..config import EXPERIMENT_NAME, Settings, load_settings
from .metrics import cv_score
from .train import load_training_frame, split_holdout

#: The sweep configuration, below the project root.
SWEEP_FILE = Path("wandb-sweeps") / "sweep.yaml"
#: ``class_weight`` as a sweep value (a command-line argument) and as the model's.
CLASS_WEIGHTS: dict[str, str | None] = {"none": None, "balanced": "balanced"}


def sweep_config(params: dict[str, Any]) -> dict[str, Any]:
    """The W&B sweep configuration of params.yaml's ``params`` (its ``tune`` search space)."""
    section = params.get("tune", {})
    metric = str(params.get("evaluate", {}).get("metric", "roc_auc"))
    return {
        "name": f"{EXPERIMENT_NAME}-tune",
        "description": "The search space of params.yaml's tune section (written by dvc repro)",
        "method": "bayes",
        "metric": {"name": f"cv_{metric}", "goal": "maximize"},
        "parameters": {
            "C": {
                "distribution": "log_uniform_values",
                "min": float(section.get("C_min", 1e-3)),
                "max": float(section.get("C_max", 100.0)),
            },
            "class_weight": {"values": list(CLASS_WEIGHTS)},
        },
        "command": ["${env}", "${interpreter}", "-m", f"{__package__}.sweep", "--trial", "${args}"],
    }


def write(settings: Settings) -> Path:
    """Write ``wandb-sweeps/sweep.yaml`` from the project's params.yaml; return its path."""
    target = settings.paths.root / SWEEP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(sweep_config(settings.params), sort_keys=False)
    target.write_text(
        "# W&B Sweeps configuration, written from params.yaml by `dvc repro` (stage sweep).\n"
        "# Online only: wandb sweep wandb-sweeps/sweep.yaml; wandb agent --count N <sweep id>.\n"
        + text,
        encoding="utf-8",
    )
    return target


def trial_params(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    """The model parameters of one sweep run's ``config`` (the rest from params.yaml)."""
    weight = str(config["class_weight"])
    if weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight {weight!r} is none of {sorted(CLASS_WEIGHTS)}")
    return {
        "C": float(config["C"]),
        "class_weight": CLASS_WEIGHTS[weight],
        "max_iter": int(settings.params["train"].get("max_iter", 1000)),
    }


def run_trial(settings: Settings, config: dict[str, Any], frame: Any = None) -> float:
    """Score one sweep run's ``config`` as a `tune` trial does; log it to W&B and MLflow."""
    import mlflow
    import wandb

    from ..platform.tracker_wandb import wandb_dir
    from ..platform.trackers import run_tags
    from ..platform.tracking import configure_tracking

    section = settings.params.get("tune", {})
    metric = str(settings.params.get("evaluate", {}).get("metric", "roc_auc"))
    frame = load_training_frame(settings) if frame is None else frame
    train, _ = split_holdout(frame, float(settings.params["train"]["test_size"]))
    params = trial_params(settings, config)
    value = cv_score(train, params, int(section.get("cv_folds", 3)), metric)
    configure_tracking(settings)
    with mlflow.start_run(run_name="sweep-trial"):
        mlflow.set_tags({**run_tags(settings), "stage": "sweep"})
        mlflow.log_params({"C": params["C"], "class_weight": params["class_weight"]})
        mlflow.log_metric(f"cv_{metric}", value)
    run = wandb.init(
        dir=str(wandb_dir(settings)),
        mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config=config,
        settings=wandb.Settings(silent=True, console="off", save_code=False),
    )
    try:
        run.log({f"cv_{metric}": value})
    finally:
        run.finish()
    return value


def main(argv: list[str] | None = None) -> None:
    """Write wandb-sweeps/sweep.yaml, or with ``--trial`` run one sweep trial (the agent's call)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", action="store_true", help="run one trial (wandb agent)")
    parser.add_argument("--C", type=float, help="inverse regularisation of the trial")
    parser.add_argument("--class_weight", choices=list(CLASS_WEIGHTS), help="of the trial")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.trial:
        if args.C is None or args.class_weight is None:
            parser.error("--trial needs --C and --class_weight (the sweep's parameters)")
        value = run_trial(settings, {"C": args.C, "class_weight": args.class_weight})
        print(f"sweep trial: C={args.C} class_weight={args.class_weight} score {value:.4f}")
    else:
        print(f"sweep: wrote {write(settings)}")


if __name__ == "__main__":
    main()
