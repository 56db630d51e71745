"""Score feature rows with the exported champion (``model.onnx``): ONNX Runtime and NumPy only.

This file is copied as ``score.py`` into the edge bundle (``make edge-bundle`` writes
``dist/edge/``) next to ``model.onnx`` and ``schema.json``. It imports nothing but the
standard library, NumPy and ONNX Runtime, so a device needs ``pip install onnxruntime
numpy`` and this folder, not the project.

    python score.py rows.jsonl            # one JSON object of features a line; '-': stdin
    python score.py --latency 200         # median single-row latency on this machine

Each input line is an object with every feature of ``schema.json`` (extra keys are
ignored); each output line answers by the schema's ``task``:

* binary: ``{"probability": p}``, the probability of the positive (last) class;
* multiclass: ``{"label": c, "probabilities": {class: p, ...}}``, the most probable of
  the schema's ``classes`` and every class's probability;
* regression: ``{"prediction": y}``, the predicted value.

A line that is not an object, or lacks a feature, or holds a non-number stops the run:
one line on stderr naming the line and the feature, exit code 2. In Python,
``Scorer().score(rows)`` gives the answers, ``Scorer().scores(rows)`` the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

HERE = Path(__file__).resolve().parent


class RowError(ValueError):
    """A row the model cannot score; the message names the row and the feature."""


class Scorer:
    """``model.onnx`` on ONNX Runtime with the column order of ``schema.json``."""

    def __init__(self, bundle: Path = HERE) -> None:
        self.schema: dict[str, Any] = json.loads((bundle / "schema.json").read_text("utf-8"))
        self.columns: list[str] = [feature["name"] for feature in self.schema["features"]]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(bundle / self.schema["model"]["file"]),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.task = str(self.schema["task"])
        self.classes: list[str] = [str(name) for name in self.schema["classes"]]
        self.input_name = str(self.schema["model"]["input"])
        self.outputs = [str(self.schema["model"]["output"])]

    def features(self, rows: Iterable[Mapping[str, Any]], first_line: int = 1) -> np.ndarray:
        """A float64 ``[n, features]`` array of ``rows`` in the schema's column order."""
        matrix = []
        for number, row in enumerate(rows, start=first_line):
            if not isinstance(row, Mapping):
                raise RowError(f"row {number}: expected a JSON object of features")
            values = []
            for name in self.columns:
                value = row.get(name)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise RowError(
                        f"row {number}: feature {name!r} must be a number, got {value!r}"
                    )
                values.append(float(value))
            matrix.append(values)
        return np.asarray(matrix, dtype=np.float64).reshape(len(matrix), len(self.columns))

    def scores(self, rows: Iterable[Mapping[str, Any]], first_line: int = 1) -> np.ndarray:
        """The model's numbers for every row, in order: binary ``[n]`` P(positive class),
        multiclass ``[n, classes]`` probabilities, regression ``[n]`` predicted values."""
        array = self.features(rows, first_line)
        raw = np.asarray(
            self.session.run(self.outputs, {self.input_name: array})[0], dtype=np.float64
        )
        if self.task == "multiclass":
            return raw.reshape(len(array), len(self.classes))
        return raw.reshape(len(array), -1)[:, -1]  # binary: the positive (last) class

    def score(
        self, rows: Iterable[Mapping[str, Any]], first_line: int = 1
    ) -> list[dict[str, Any]]:
        """The answer of every row, in order (see the module docstring)."""
        scores = self.scores(rows, first_line)
        if self.task == "multiclass":
            return [
                {
                    "label": self.classes[int(np.argmax(row))],
                    "probabilities": dict(zip(self.classes, row.tolist(), strict=True)),
                }
                for row in scores
            ]
        key = "prediction" if self.task == "regression" else "probability"
        return [{key: value} for value in scores.tolist()]

    def latency_ms(self, row: Mapping[str, Any], runs: int) -> dict[str, float]:
        """Median and 90th percentile of ``runs`` single-row ``score`` calls, in ms."""
        self.score([row])  # warm-up: ONNX Runtime allocates its buffers on the first run
        timings = []
        for _ in range(max(runs, 1)):
            started = time.perf_counter()
            self.score([row])
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        return {
            "runs": float(len(timings)),
            "median_ms": statistics.median(timings),
            "p90_ms": timings[min(len(timings) - 1, int(0.9 * len(timings)))],
        }

    def example_row(self) -> dict[str, float]:
        """A row of each feature's middle value (its range's midpoint, else 0)."""
        row = {}
        for feature in self.schema["features"]:
            low_high = feature.get("range")
            row[feature["name"]] = (low_high[0] + low_high[1]) / 2 if low_high else 0.0
        return row


def read_rows(source: str) -> list[Any]:
    """The JSON values of ``source`` (a path, or ``-`` for stdin), one a non-empty line."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RowError(f"line {number}: not JSON ({exc.msg})") from None
    return rows


def main(argv: list[str] | None = None) -> int:
    """Score a JSON-lines file, or time single-row calls with ``--latency N``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("rows", nargs="?", help="JSON lines of feature objects ('-': stdin)")
    parser.add_argument("--latency", type=int, metavar="N", help="time N single-row calls")
    args = parser.parse_args(argv)
    if args.rows is None and args.latency is None:
        parser.error("give a rows file (or '-') or --latency N")
    scorer = Scorer()
    if args.latency is not None:
        print(json.dumps(scorer.latency_ms(scorer.example_row(), args.latency)))
        return 0
    try:
        answers = scorer.score(read_rows(args.rows))
    except (RowError, OSError) as exc:
        print(f"error: {args.rows}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.writelines(json.dumps(answer) + "\n" for answer in answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
