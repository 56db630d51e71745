"""Training and evaluation write offline W&B runs holding MLflow's values (read back)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from {{ package_name }}.config import Settings
from {{ package_name }}.evaluate import run as evaluate
from {{ package_name }}.tracker_wandb import wandb_dir
from {{ package_name }}.trackers import differences, runs_to_check
from {{ package_name }}.train import run as train
from {{ package_name }}.verify import StepFailed
from {{ package_name }}.verify_wandb import find_run, records


@pytest.fixture()
def frame(tiny_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return tiny_data[0]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_DIR", raising=False)


def test_train_and_evaluate_runs_read_back(settings: Settings, frame: pd.DataFrame) -> None:
    train(settings, frame)
    evaluate(settings)
    runs = runs_to_check(settings, mlflow.get_tracking_uri())
    directory = wandb_dir(settings) / "wandb"
    for name, artifact in (("train", "model"), ("evaluate", "evaluation_report")):
        record = runs[name]
        run = find_run(directory, record.run_id)
        assert record.metrics and differences(record.metrics, run.history[0]) == []
        assert f"git_commit:{record.tags['git_commit']}"[:64] in run.tags
        assert run.config["tags"] == record.tags
        assert {key: str(run.config[key]) for key in record.params} == record.params
        files = run.artifacts[f"{record.experiment}-{artifact}"]
        assert "MLmodel" in files if name == "train" else files == ["evaluation_report.json"]


def test_records_refuse_another_file(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not a wandb log")
    with pytest.raises(StepFailed, match="not a W&B transaction log"):
        list(records(path))
