"""Canary and shadow rollout of the registry's ``challenger`` beside the ``champion``.

``SERVING_ROLLOUT`` picks the mode (read once, when the app is built):

- ``none`` (default): only the champion is loaded and serves; nothing here runs.
- ``canary``: the ``challenger`` alias is loaded too, and ``SERVING_CANARY_PERCENT``
  percent (default 10, 0-100) of requests are answered by it. The share is decided by the
  request id (``X-Request-ID``, or the id the app gives the request): the same id always
  goes to the same model. The answer names the version that scored it (``model_version``)
  and says which alias in the ``X-Model-Alias`` header; ``rollout_predictions_total``
  counts rows by alias and version.
- ``shadow``: every request is scored by both; the champion answers, and one JSON line a
  request goes to ``SERVING_SHADOW_LOG`` (default ``logs/shadow.jsonl``): request id,
  both versions, both models' scores (:func:`.outputs.model_scores`: binary P(class 1),
  multiclass one probability per class, regression the predicted value) and both model
  times. ``make ab-report`` (``python -m <package>.serving.rollout``) reads it into
  ``reports/ab.json``: label agreement (classification: the binary label at the
  threshold, the most probable class), score deltas (every probability, or the
  predicted values) and model latency per model.

Until the challenger is loaded (or when there is none), the champion answers every
request and ``/ready`` stays 200 on the champion alone.

Where the platform splits traffic itself (a KServe canary revision, a SageMaker
challenger production variant) the challenger runs in replicas of its own:
``SERVING_MODEL_ALIAS=challenger`` makes a replica load and serve only the registry's
``challenger`` (default ``champion``); such a replica runs no rollout of its own
(``SERVING_ROLLOUT`` must be ``none``), the platform holds the split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MODEL_ALIAS
from ..schema import TASK
from .outputs import USES_THRESHOLD, model_scores, row_labels

ROLLOUT_MODES = ("none", "canary", "shadow")
CHALLENGER_ALIAS = "challenger"
SERVED_ALIASES = (MODEL_ALIAS, CHALLENGER_ALIAS)
DEFAULT_CANARY_PERCENT = 10.0
DEFAULT_SHADOW_LOG = Path("logs") / "shadow.jsonl"
BUCKETS = 10_000
"""Request ids hash into this many buckets: the canary share has 0.01 % steps."""


@dataclass(frozen=True)
class Rollout:
    """The rollout mode, the canary share (percent), the shadow log's path and the alias
    this replica serves (``challenger``: a platform-split challenger replica)."""

    mode: str = "none"
    canary_percent: float = DEFAULT_CANARY_PERCENT
    shadow_log: Path = DEFAULT_SHADOW_LOG
    alias: str = MODEL_ALIAS

    @classmethod
    def from_env(cls, root: Path) -> Rollout:
        """``SERVING_ROLLOUT``, ``SERVING_CANARY_PERCENT``, ``SERVING_SHADOW_LOG`` and
        ``SERVING_MODEL_ALIAS`` (checked)."""
        mode = os.environ.get("SERVING_ROLLOUT") or "none"
        if mode not in ROLLOUT_MODES:
            raise ValueError(
                f"SERVING_ROLLOUT must be one of {', '.join(ROLLOUT_MODES)}; got {mode!r}"
            )
        raw = os.environ.get("SERVING_CANARY_PERCENT") or str(DEFAULT_CANARY_PERCENT)
        try:
            percent = float(raw)
        except ValueError:
            percent = -1.0
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"SERVING_CANARY_PERCENT must be a number from 0 to 100; got {raw!r}")
        alias = os.environ.get("SERVING_MODEL_ALIAS") or MODEL_ALIAS
        if alias not in SERVED_ALIASES:
            raise ValueError(
                f"SERVING_MODEL_ALIAS must be one of {', '.join(SERVED_ALIASES)}; got {alias!r}"
            )
        if alias != MODEL_ALIAS and mode != "none":
            raise ValueError(
                f"SERVING_MODEL_ALIAS={alias} serves the challenger alone (the platform splits"
                f" the traffic): SERVING_ROLLOUT must be none, got {mode!r}"
            )
        log = Path(os.environ.get("SERVING_SHADOW_LOG") or DEFAULT_SHADOW_LOG)
        return cls(mode, percent, log if log.is_absolute() else root / log, alias)

    @property
    def active(self) -> bool:
        """Whether a challenger is loaded beside the champion."""
        return self.mode != "none"


def to_challenger(request_id: str, percent: float) -> bool:
    """Whether the canary sends ``request_id`` to the challenger (same id, same answer)."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS < round(percent * BUCKETS / 100)


class ShadowLog:
    """Appends one JSON line a shadowed request; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (with the time it was written) as one line."""
        line = json.dumps({"time": round(time.time(), 3), **record}, separators=(",", ":"))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _scores(record: dict[str, Any]) -> np.ndarray:
    """One model's scores in a shadow record (``probabilities``: logs written before
    ``scores``), shaped and checked for the task."""
    values = record["scores"] if "scores" in record else record["probabilities"]
    return model_scores(values, len(values))


def ab_report(log: Path, threshold: float = 0.5) -> dict[str, Any]:
    """Compare champion and challenger on every row of the shadow log ``log``.

    Agreement (classification only) is the share of rows whose label is the same for
    both (binary: probability >= ``threshold``; multiclass: the most probable class);
    deltas are challenger minus champion scores (every class's probability, or the
    predicted values); latencies are each model's scoring time per request (ms). Raises
    ``ValueError`` naming the line of a malformed record, or when the log holds no rows.
    """
    deltas: list[float] = []
    agree = requests = rows = 0
    latency: dict[str, list[float]] = {"champion": [], CHALLENGER_ALIAS: []}
    versions: dict[str, set[str]] = {"champion": set(), CHALLENGER_ALIAS: set()}
    with log.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                scores = {alias: _scores(record[alias]) for alias in latency}
                for alias in latency:
                    latency[alias].append(float(record[alias]["ms"]))
                    versions[alias].add(str(record[alias]["version"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{log}:{number}: not a shadow record ({exc})") from None
            champion, challenger = scores["champion"], scores[CHALLENGER_ALIAS]
            if champion.shape != challenger.shape:
                raise ValueError(f"{log}:{number}: {len(champion)} vs {len(challenger)} rows")
            requests += 1
            rows += len(champion)
            deltas.extend((challenger - champion).reshape(-1).tolist())
            ours, theirs = row_labels(champion, threshold), row_labels(challenger, threshold)
            if ours is not None and theirs is not None:
                agree += sum(a == b for a, b in zip(ours, theirs, strict=True))
    if not rows:
        raise ValueError(f"{log}: no shadowed rows yet (serve with SERVING_ROLLOUT=shadow)")
    absolute = [abs(d) for d in deltas]
    return {
        "log": str(log),
        "task": TASK,
        **({"threshold": threshold} if USES_THRESHOLD else {}),
        "requests": requests,
        "rows": rows,
        "versions": {alias: sorted(found) for alias, found in versions.items()},
        **({"agreement": agree / rows} if TASK != "regression" else {}),
        "delta": {
            "mean": statistics.fmean(deltas),
            "mean_abs": statistics.fmean(absolute),
            "p95_abs": _percentile(absolute, 95),
            "max_abs": max(absolute),
        },
        "latency_ms": {
            alias: {"p50": _percentile(values, 50), "p99": _percentile(values, 99)}
            for alias, values in latency.items()
        },
    }


def agreement(report: dict[str, Any]) -> str:
    """The report's label agreement in words (none for regression)."""
    if "agreement" not in report:
        return "no labels (regression)"
    where = f" at {report['threshold']:g}" if "threshold" in report else ""
    return f"label agreement {report['agreement']:.1%}{where}"


def main(argv: list[str] | None = None) -> None:
    """``python -m <package>.serving.rollout [--log L] [--out reports/ab.json]``: the A/B report."""
    from ..config import load_settings

    parser = argparse.ArgumentParser(description="A/B report of the shadow log")
    parser.add_argument("--log", type=Path, default=None, help="default: SERVING_SHADOW_LOG")
    parser.add_argument("--out", type=Path, default=None, help="default: reports/ab.json")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        log = args.log or Rollout.from_env(settings.paths.root).shadow_log
        threshold = float(os.environ.get("CHURN_THRESHOLD") or 0.5)
        report = ab_report(log, threshold)
    except (ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    out = args.out or settings.paths.reports_dir / "ab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    versions = report["versions"]
    timing = report["latency_ms"]
    print(
        f"{report['requests']} requests, {report['rows']} rows: champion v"
        f"{','.join(versions['champion'])} vs challenger v{','.join(versions[CHALLENGER_ALIAS])}"
        f"; {agreement(report)}; |delta| mean "
        f"{report['delta']['mean_abs']:.4f}, max {report['delta']['max_abs']:.4f}; model ms "
        f"p50/p99 champion {timing['champion']['p50']:.3f}/{timing['champion']['p99']:.3f}, "
        f"challenger {timing[CHALLENGER_ALIAS]['p50']:.3f}/{timing[CHALLENGER_ALIAS]['p99']:.3f}"
    )
    print(f"written: {out}")


if __name__ == "__main__":
    main()
