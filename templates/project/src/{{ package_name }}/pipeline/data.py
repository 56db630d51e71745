"""The raw data: the user's table (``schema.SOURCE_FILE``) or synthetic churn data.

:func:`raw_frames` is what the `prepare` stage and the tests call. With a source table
(``data/source/<file>``, versioned by DVC) it reads the file, renames its columns as the
contract says, adds the generated entity (row number) and the synthetic event time when
the table has none, encodes a classification target as class indices, and splits by
event time: the newest ``current_share`` of the rows is the unlabelled current batch
(the drift monitor's "current"), the rest the labelled history (its "reference").

Without a source table the data is synthetic but realistic customer churn, generated
from a fixed seed.

Each customer has a few static traits (contract, products, seniority) and is observed
several times over the date range: every observation is a snapshot of the eight features
of :data:`schema.FEATURE_DTYPES` at ``event_timestamp``, labelled with whether the
customer churned in the following month. The label is drawn from a logistic function of
the features (with one interaction a linear model can only learn with crossed features),
so a model reaches a holdout ROC AUC of about 0.8.

The ``current`` batch is the newest snapshot of a sample of customers, taken after the
history ends, with a controlled drift (price rise, more support calls, later payments)
whose size is set by ``drift_strength`` (0 means no drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schema import (
    ENTITY_COLUMN,
    ENTITY_GENERATED,
    FEATURE_COLUMNS,
    FEATURE_DTYPES,
    LABEL_CLASSES,
    LABEL_COLUMN,
    LABEL_DTYPE,
    SOURCE_FILE,
    SOURCE_RENAMES,
    SYNTHETIC_EVENT_START,
    TASK,
    TIMESTAMP_COLUMN,
    TIMESTAMP_SYNTHETIC,
)

# Columns the drift of the current batch acts on.
DRIFTED_FEATURES: tuple[str, ...] = ("monthly_charges", "support_calls", "payment_delay_days")

_FIRST_CUSTOMER_ID = 100_000
_CONTRACTS = np.array([1, 12, 24])


@dataclass(frozen=True)
class DataParams:
    """The ``data`` section of ``params.yaml``."""

    seed: int = 42
    n_customers: int = 4000
    snapshots_per_customer: int = 3
    start_date: str = "2025-01-01"
    days: int = 90
    current_size: int = 1000
    current_days: int = 7
    drift_strength: float = 1.0
    current_share: float = 0.2

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DataParams:
        """Build from the whole params dict (its ``data`` section); unknown keys are errors."""
        return cls(**params.get("data", {}))

    @property
    def start(self) -> pd.Timestamp:
        """First instant of the history, in UTC."""
        return pd.Timestamp(self.start_date, tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        """End of the history (exclusive) and start of the current batch."""
        return self.start + pd.Timedelta(days=self.days)


def _customers(p: DataParams, rng: np.random.Generator) -> pd.DataFrame:
    """Static traits of every customer, drawn once."""
    n = p.n_customers
    contract = rng.choice(_CONTRACTS, size=n, p=[0.55, 0.25, 0.20])
    products = rng.choice([1, 2, 3, 4], size=n, p=[0.45, 0.30, 0.17, 0.08])
    base_charges = np.clip(22 + 14 * products + rng.normal(0, 9, n), 18, 130)
    return pd.DataFrame(
        {
            ENTITY_COLUMN: np.arange(_FIRST_CUSTOMER_ID, _FIRST_CUSTOMER_ID + n, dtype="int64"),
            "contract_months": contract,
            "num_products": products,
            "is_senior": (rng.random(n) < 0.16).astype("int64"),
            "tenure0": np.clip(np.rint(rng.exponential(14 + 0.8 * contract, n)), 0, 70),
            "base_charges": base_charges,
            "support_rate": rng.gamma(2.0, 0.55, n),
            "late_payer": rng.gamma(1.5, 1.0, n),
            # Unobserved reasons to leave (moves, competitor offers): caps the reachable AUC.
            "latent": rng.normal(0.0, 0.8, n),
        }
    )


def _observe(
    customers: pd.DataFrame,
    days: np.ndarray,
    p: DataParams,
    rng: np.random.Generator,
    tenure_days: np.ndarray | None = None,
) -> pd.DataFrame:
    """Snapshot the features of ``customers`` (one row each) at ``days`` after the start.

    Tenure grows with ``tenure_days`` (default: ``days``).
    """
    n = len(customers)
    tenure = customers["tenure0"].to_numpy() + (days if tenure_days is None else tenure_days) // 30
    monthly = customers["base_charges"].to_numpy() * (1 + rng.normal(0, 0.03, n))
    total = np.maximum(tenure, 1) * monthly * rng.uniform(0.92, 1.04, n)
    seconds = rng.integers(0, 86_400, n)
    timestamps = p.start + pd.to_timedelta(days * 86_400 + seconds, unit="s")
    frame = pd.DataFrame(
        {
            ENTITY_COLUMN: customers[ENTITY_COLUMN].to_numpy(),
            TIMESTAMP_COLUMN: timestamps,
            "tenure_months": tenure,
            "monthly_charges": np.round(monthly, 2),
            "total_charges": np.round(total, 2),
            "support_calls": rng.poisson(customers["support_rate"].to_numpy()),
            "contract_months": customers["contract_months"].to_numpy(),
            "num_products": customers["num_products"].to_numpy(),
            "is_senior": customers["is_senior"].to_numpy(),
            "payment_delay_days": np.round(
                np.minimum(rng.gamma(1.2, 1.0 + 2.0 * customers["late_payer"].to_numpy()), 60), 1
            ),
        }
    )
    return frame


def churn_probability(features: pd.DataFrame, latent: np.ndarray | float = 0.0) -> np.ndarray:
    """The data-generating probability of churn of each row of ``features``.

    ``latent`` is the customers' unobserved propensity to leave, added to the logit.
    """
    month_to_month = (features["contract_months"] == 1).to_numpy()
    logit = (
        -1.55
        + 0.42 * features["support_calls"]
        - 0.045 * features["tenure_months"]
        + 0.022 * (features["monthly_charges"] - 65)
        - 0.035 * features["contract_months"]
        + 0.11 * features["payment_delay_days"]
        + 0.45 * features["is_senior"]
        - 0.30 * (features["num_products"] - 1)
        + 0.35 * month_to_month * features["support_calls"]
    )
    return 1.0 / (1.0 + np.exp(-(logit.to_numpy(dtype="float64") + latent)))


def task_labels(signal: np.ndarray) -> np.ndarray:
    """Targets of ``schema.TASK`` from a continuous signal (synthetic rows of tests and
    benchmarks): class 1 where it is positive (binary), ``len(LABEL_CLASSES)`` classes cut
    at its quantiles (multiclass), or the signal itself (regression)."""
    values = np.asarray(signal, dtype=np.float64)
    if TASK == "regression":
        return values
    if TASK == "binary":
        return (values > 0).astype("int64")
    cuts = np.quantile(values, np.linspace(0, 1, len(LABEL_CLASSES) + 1)[1:-1])
    return np.searchsorted(cuts, values, side="right").astype("int64")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast to the data contract's dtypes and order the rows by time then customer."""
    frame[ENTITY_COLUMN] = frame[ENTITY_COLUMN].astype("int64")
    frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    frame = frame.astype(FEATURE_DTYPES)
    return frame.sort_values([TIMESTAMP_COLUMN, ENTITY_COLUMN], kind="stable").reset_index(
        drop=True
    )


def generate_history(p: DataParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(customers, history)``: static traits and the labelled snapshots."""
    rng = np.random.default_rng(p.seed)
    customers = _customers(p, rng)
    frames = []
    for _ in range(p.snapshots_per_customer):
        days = rng.integers(0, p.days, len(customers))
        frames.append(_observe(customers, days, p, rng))
    history = pd.concat(frames, ignore_index=True)
    latent = np.tile(customers["latent"].to_numpy(), p.snapshots_per_customer)
    churn = rng.random(len(history)) < churn_probability(history, latent)
    history[LABEL_COLUMN] = churn.astype("int64")
    history = _typed(history)
    # One customer can't be observed twice at the same instant.
    history = history.drop_duplicates([ENTITY_COLUMN, TIMESTAMP_COLUMN]).reset_index(drop=True)
    return customers, history


def generate_current(p: DataParams, customers: pd.DataFrame) -> pd.DataFrame:
    """Return the unlabelled current batch: newest snapshots with a controlled drift."""
    rng = np.random.default_rng(p.seed + 1)
    size = min(p.current_size, len(customers))
    sample = customers.iloc[np.sort(rng.choice(len(customers), size=size, replace=False))]
    days = p.days + rng.integers(0, p.current_days, size)
    # The customer base renews itself (newcomers replace leavers), so the tenure mix stays
    # that of the history: only the columns below drift.
    tenure_days = rng.integers(0, p.days, size)
    current = _observe(sample.reset_index(drop=True), days, p, rng, tenure_days)
    s = p.drift_strength
    if s:
        # Price rise, an incident wave on support and slower payments.
        current["monthly_charges"] = np.round(current["monthly_charges"] * (1 + 0.18 * s), 2)
        current["support_calls"] += rng.poisson(1.2 * s, size)
        current["payment_delay_days"] = np.round(
            current["payment_delay_days"] * (1 + 0.6 * s) + rng.exponential(1.5 * s, size), 1
        )
    return _typed(current)


def generate(p: DataParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(history, current)``: labelled snapshots and the drifted current batch."""
    customers, history = generate_history(p)
    return history, generate_current(p, customers)


def read_source(path: Path) -> pd.DataFrame:
    """The source table as the contract names and types it, sorted by event time.

    Rows without a target are left out (as ``new --data`` counted them).
    """
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, keep_default_na=True)
    else:
        frame = pd.read_parquet(path)
    frame = frame.rename(columns=SOURCE_RENAMES)
    if ENTITY_GENERATED:
        frame[ENTITY_COLUMN] = np.arange(len(frame), dtype="int64")
    if TIMESTAMP_SYNTHETIC:
        start = pd.Timestamp(SYNTHETIC_EVENT_START)
        frame[TIMESTAMP_COLUMN] = start + pd.to_timedelta(np.arange(len(frame)), unit="s")
    frame = frame[frame[LABEL_COLUMN].notna()]
    if TASK != "regression":
        names = frame[LABEL_COLUMN].map(_class_name)
        index = {name: i for i, name in enumerate(LABEL_CLASSES)}
        frame = frame.assign(**{LABEL_COLUMN: names.map(index)})
    frame = frame[[ENTITY_COLUMN, TIMESTAMP_COLUMN, *FEATURE_COLUMNS, LABEL_COLUMN]].copy()
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype(LABEL_DTYPE)
    return _typed(frame)


def _class_name(value: Any) -> str:
    """A class as ``new --data`` wrote it into LABEL_CLASSES (whole floats as integers)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.bool_ | bool):
        return str(bool(value)).lower()
    return str(value)


def split_source(frame: pd.DataFrame, p: DataParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(history, current)``: the newest ``current_share`` rows, unlabelled, are current."""
    if not 0.0 < p.current_share < 1.0:
        raise ValueError(f"data.current_share must be in (0, 1), got {p.current_share}")
    n_current = max(1, round(len(frame) * p.current_share))
    history = frame.iloc[:-n_current].reset_index(drop=True)
    current = frame.iloc[-n_current:].drop(columns=[LABEL_COLUMN]).reset_index(drop=True)
    return history, current


def raw_frames(p: DataParams, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(history, current)``: split from ``data/source/SOURCE_FILE``, else generated."""
    if SOURCE_FILE is None:
        return generate(p)
    return split_source(read_source(root / "data" / "source" / SOURCE_FILE), p)


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Entity, timestamp and feature columns of ``frame``, in the contract's order."""
    return frame[[ENTITY_COLUMN, TIMESTAMP_COLUMN, *FEATURE_COLUMNS]]
