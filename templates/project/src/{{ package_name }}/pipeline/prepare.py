"""Stage `prepare`: the raw data (labelled history + current batch), from a table or generated."""

from __future__ import annotations

from ..config import Settings, load_settings
from ..schema import ENTITY_COLUMN, LABEL_COLUMN
from ..telemetry import stage_entry
from .data import DataParams, raw_frames
from .data_check import DataCheckError, read_checked, refuse, run_stage


def run(settings: Settings) -> dict[str, float]:
    """Write ``data/raw/customers.parquet`` and ``data/raw/current.parquet``; return counts.

    Both files are read back and checked against the data contract (:mod:`data_check`):
    a DataCheckError here means the data source broke it; both files are then removed.
    """
    params = DataParams.from_params(settings.params)
    history, current = raw_frames(params, settings.paths.root)
    settings.paths.raw_dir.mkdir(parents=True, exist_ok=True)
    history.to_parquet(settings.paths.history, index=False)
    current.to_parquet(settings.paths.current, index=False)
    try:
        history = read_checked(settings.paths.history, labelled=True)
        current = read_checked(settings.paths.current, labelled=False)
    except DataCheckError:
        # Leave no raw data behind that breaks the contract.
        settings.paths.history.unlink(missing_ok=True)
        settings.paths.current.unlink(missing_ok=True)
        raise
    return {
        "history_rows": len(history),
        "customers": int(history[ENTITY_COLUMN].nunique()),
        "churn_rate": float(history[LABEL_COLUMN].mean()),
        "current_rows": len(current),
    }


@stage_entry("prepare")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.prepare``.

    Exit code 1 on data breaking the contract.
    """
    try:
        summary = run(load_settings())
    except DataCheckError as error:
        refuse(error)
    print(
        f"prepare: {summary['history_rows']} snapshots of {summary['customers']} entities "
        f"(mean label {summary['churn_rate']:.3f}), {summary['current_rows']} current rows"
    )


if __name__ == "__main__":
    run_stage(main)
