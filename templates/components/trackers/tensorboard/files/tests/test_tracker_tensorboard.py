"""Training and evaluation write TensorBoard runs holding MLflow's values (read back)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from {{ package_name }}.config import Settings
from {{ package_name }}.evaluate import run as evaluate
from {{ package_name }}.tracker_tensorboard import run_dir
from {{ package_name }}.trackers import differences, runs_to_check
from {{ package_name }}.train import run as train


@pytest.fixture()
def frame(tiny_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return tiny_data[0]


def read_scalars(directory: str) -> tuple[dict[str, float], dict[str, str]]:
    """The step-0 scalars and the text tags of one run, with TensorBoard's own loader."""
    from tensorboard.backend.event_processing import event_accumulator

    loaded = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0}
    )
    loaded.Reload()
    scalars, texts = {}, {}
    for tag in loaded.Tags()["tensors"]:
        event = loaded.Tensors(tag)[0]
        if event.tensor_proto.string_val:
            texts[tag] = event.tensor_proto.string_val[0].decode()
        else:
            scalars[tag] = float(event.tensor_proto.double_val[0])
    return scalars, texts


def test_train_and_evaluate_runs_read_back(settings: Settings, frame: pd.DataFrame) -> None:
    train(settings, frame)
    evaluate(settings)
    runs = runs_to_check(settings, mlflow.get_tracking_uri())
    assert set(runs) == {"train", "evaluate"}
    for record in runs.values():
        scalars, texts = read_scalars(str(run_dir(settings, record)))
        assert record.metrics and differences(record.metrics, scalars) == []
        assert f"| git_commit | {record.tags['git_commit']} |" in texts["tags"]
        assert "| stack_profile |" in texts["tags"]
        assert record.params and all(f"| {key} |" in texts["params"] for key in record.params)
    model = run_dir(settings, runs["train"]) / "artifacts" / "model" / "MLmodel"
    assert model.is_file()
    report = run_dir(settings, runs["evaluate"]) / "artifacts" / "evaluation_report.json"
    assert '"promoted"' in report.read_text(encoding="utf-8")
