"""Stage `validate`: a Great Expectations suite guards the raw data before anything uses it.

Runs after `prepare` on both raw files (the labelled history and the current batch).
The suite checks the columns of the data contract, completeness, value ranges and that
(customer_id, event_timestamp) identifies a row. A failed expectation stops the pipeline:
the stage prints which expectations failed on which file and exits with code 1, so
`dvc repro` (and the Airflow task running it) fails before features are published.
``reports/validation.json`` records every result.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd

from ..config import Settings, load_settings
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_RANGES, LABEL_COLUMN, TIMESTAMP_COLUMN
from ..telemetry import stage_entry

EXIT_INVALID = 1
# column -> (min, max): the data contract's ranges (schema.py).
RANGES = FEATURE_RANGES


class ValidationFailed(Exception):
    """The raw data broke the suite; the message lists the failed expectations."""


def build_suite(name: str, labelled: bool) -> Any:
    """The expectation suite of one raw file (``labelled``: the history, with the label)."""
    import great_expectations as gx

    columns = [ENTITY_COLUMN, TIMESTAMP_COLUMN, *FEATURE_COLUMNS]
    if labelled:
        columns.append(LABEL_COLUMN)
    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gx.expectations.ExpectTableColumnsToMatchSet(column_set=columns))
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    for column in columns:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    for column, (low, high) in RANGES.items():
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column=column, min_value=low, max_value=high
            )
        )
    suite.add_expectation(
        gx.expectations.ExpectCompoundColumnsToBeUnique(
            column_list=[ENTITY_COLUMN, TIMESTAMP_COLUMN]
        )
    )
    if labelled:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeInSet(column=LABEL_COLUMN, value_set=[0, 1])
        )
    return suite


def validate_frame(frame: pd.DataFrame, name: str, labelled: bool) -> dict[str, Any]:
    """Run the suite on ``frame`` (GE 1.x ephemeral context); return a JSON-able summary."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(name=f"{name}-source")
    asset = source.add_dataframe_asset(name=name)
    batch = asset.add_batch_definition_whole_dataframe(f"{name}-batch")
    suite = context.suites.add(build_suite(f"{name}-suite", labelled))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}-validation", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame})
    failed = []
    for item in result.results:
        if not item.success:
            config = item.expectation_config
            settings = config.kwargs if config is not None else {}
            kwargs = {k: v for k, v in settings.items() if k != "batch_id"}
            observed = (item.result or {}).get(
                "unexpected_count", (item.result or {}).get("observed_value")
            )
            expectation = config.type if config is not None else "unknown"
            failed.append({"expectation": expectation, "kwargs": kwargs, "observed": observed})
    return {
        "name": name,
        "rows": len(frame),
        "success": bool(result.success),
        "evaluated": len(result.results),
        "failed": failed,
    }


def run(settings: Settings) -> dict[str, Any]:
    """Validate both raw files; write ``reports/validation.json``; raise if any failed."""
    paths = settings.paths
    results = [
        validate_frame(pd.read_parquet(paths.history), "history", labelled=True),
        validate_frame(pd.read_parquet(paths.current), "current", labelled=False),
    ]
    summary = {"success": all(r["success"] for r in results), "results": results}
    paths.reports_dir.mkdir(parents=True, exist_ok=True)
    (paths.reports_dir / "validation.json").write_text(
        json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if not summary["success"]:
        lines = [
            f"  {r['name']}: {f['expectation']} {f['kwargs']} (observed {f['observed']})"
            for r in results
            for f in r["failed"]
        ]
        raise ValidationFailed("raw data failed validation:\n" + "\n".join(lines))
    return summary


@stage_entry("validate")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.validate``; exit code 1 if it fails."""
    try:
        summary = run(load_settings())
    except ValidationFailed as exc:
        print(f"validate: FAILED - the pipeline stops here.\n{exc}", file=sys.stderr)
        sys.exit(EXIT_INVALID)
    counts = ", ".join(
        f"{r['name']} {r['rows']} rows/{r['evaluated']} checks" for r in summary["results"]
    )
    print(f"validate: passed ({counts})")


if __name__ == "__main__":
    main()
