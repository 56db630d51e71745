"""The report of a hyper-parameter search: best trial, parameter importance, a plot.

Written by the `tune` stage (Optuna or Ray Tune alike) to ``reports/tuning/``:
``report.json`` (every trial, the best one, the importance of each searched parameter),
``report.md`` (the same as tables) and ``search.png`` (each trial's score with the best so
far, and the importances as bars). The importance is Optuna's fANOVA evaluator, fitted on
the trials of the search (whichever tuner ran them) over the search space of params.yaml.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..config import Settings
from .metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: Where the stage writes the report, below the project root.
REPORT_DIR = Path("reports") / "tuning"


def search_space(section: dict[str, Any]) -> dict[str, BaseDistribution]:
    """The searched parameters of params.yaml's ``tune`` section, as Optuna distributions."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {
        "C": FloatDistribution(
            float(section.get("C_min", 1e-3)), float(section.get("C_max", 100.0)), log=True
        ),
        "class_weight": CategoricalDistribution([None, "balanced"]),
    }


def importance(
    trials: list[dict[str, Any]],
    section: dict[str, Any],
    direction: Literal["minimize", "maximize"] = "maximize",
) -> dict[str, float]:
    """fANOVA importance of each searched parameter (sums to 1; empty below two trials);
    ``direction``: ``minimize`` for a lower-is-better metric."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    space = search_space(section)
    if len(trials) < 2:
        return {}
    study = optuna.create_study(direction=direction)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={name: trial["params"][name] for name in space},
                distributions=space,
                value=float(trial["value"]),
            )
            for trial in trials
        ]
    )
    evaluator = FanovaImportanceEvaluator(seed=int(section.get("seed", 42)))
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {name: float(found.get(name, 0.0)) for name in space}


def plot(path: Path, trials: list[dict[str, Any]], weights: dict[str, float], metric: str) -> None:
    """Write ``search.png``: scores by trial with the best so far, importances as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ordered = sorted(trials, key=lambda trial: int(trial["number"]))
    numbers = [int(trial["number"]) for trial in ordered]
    values = [float(trial["value"]) for trial in ordered]
    pick = min if metric in LOWER_IS_BETTER else max
    best = [pick(values[: i + 1]) for i in range(len(values))]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot(numbers, values, "o", label="trial")
    left.step(numbers, best, where="post", label="best so far")
    left.set(xlabel="trial", ylabel=f"cv {metric}", title="Search history")
    left.legend(loc="lower right")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    names = list(weights)
    right.barh(names, [weights[name] for name in names])
    right.set(xlabel="fANOVA importance", title="Parameter importance", xlim=(0.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def write_report(
    settings: Settings, result: dict[str, Any], trials: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write ``reports/tuning/`` from the stage's ``result`` and its ``trials``; return the
    report (``report.json``'s content)."""
    if not trials:
        raise ValueError("the search finished no trial: nothing to report")
    section = settings.params["tune"]
    metric = str(result["metric"])
    target = settings.paths.root / REPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    pick = min if metric in LOWER_IS_BETTER else max  # rmse, log loss...: lower is better
    best = pick(trials, key=lambda trial: float(trial["value"]))
    weights = importance(trials, section, "minimize" if metric in LOWER_IS_BETTER else "maximize")
    report = {
        "tuner": result.get("tuner", "optuna"),
        "metric": f"cv_{metric}",
        "n_trials": len(trials),
        "parameters": list(search_space(section)),
        "best_trial": best,
        "importance": weights,
        "trials": sorted(trials, key=lambda trial: int(trial["number"])),
        "plot": "search.png",
    }
    (target / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(target / "search.png", trials, weights, metric)
    lines = [
        f"# Hyper-parameter search ({report['tuner']})",
        "",
        f"Best of {len(trials)} trials: trial {best['number']}, cv {metric} "
        f"{float(best['value']):.4f} (MLflow run {best['run_id']}).",
        "",
        "| parameter | best value | importance |",
        "|---|---|---|",
        *(
            f"| {name} | {best['params'].get(name)} | "
            f"{weights[name]:.3f} |" if name in weights and not math.isnan(weights[name])
            else f"| {name} | {best['params'].get(name)} | n/a |"
            for name in report["parameters"]
        ),
        "",
        "![search](search.png)",
        "",
    ]
    (target / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return report
