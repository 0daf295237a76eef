"""A seeded synthetic churn table for the demo: nothing downloaded, same rows per seed.

Churn follows a known logistic function of the features (`churn_logit`); `drift=True`
moves income and monthly charges up, adds an unseen region, and changes the relation
to the target, so drift checks and retraining have something real to find.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 90
REGIONS = ("north", "south", "east", "west")
DRIFT_REGION = "central"  # never seen before the drift
PLANS = ("basic", "standard", "premium")
PLAN_PRICE = {"basic": 35.0, "standard": 65.0, "premium": 95.0}
PLAN_EFFECT = {"basic": 0.4, "standard": 0.0, "premium": -0.3}
COEFFICIENTS = {  # churn log-odds per unit; "drifted" replaces some after the drift
    "intercept": -0.6,
    "tenure_months": -0.045,
    "monthly_charges": 0.02,
    "support_calls": 0.35,
    "has_partner": -0.5,
    "income_per_10k": -0.08,
}
DRIFTED = {"intercept": 0.2, "support_calls": 0.7, "monthly_charges": -0.01}


def generate(
    n_rows: int, seed: int, drift: bool = False, end: datetime | str | None = None
) -> pd.DataFrame:
    """`n_rows` churn-like rows over the 90 days before `end`, deterministic per seed."""
    rng = np.random.default_rng([seed, int(drift)])
    end_at = pd.Timestamp(end or DEFAULT_END)
    end_at = end_at.tz_localize("UTC") if end_at.tzinfo is None else end_at.tz_convert("UTC")
    frame = _customers(rng, n_rows, drift)
    frame.insert(0, "event_time", _times(rng, n_rows, end_at))
    frame["churned"] = (rng.random(n_rows) < churn_probability(frame, drift)).astype("int64")
    frame["lifetime_value"] = _lifetime_value(rng, frame)
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def churn_logit(frame: pd.DataFrame, drift: bool = False) -> np.ndarray:
    """The log-odds of churn the generator draws from (income missing counts as average)."""
    c = {**COEFFICIENTS, **(DRIFTED if drift else {})}
    income = frame["income"].fillna(55_000.0).to_numpy(float)
    return (
        c["intercept"]
        + c["tenure_months"] * frame["tenure_months"].to_numpy(float)
        + c["monthly_charges"] * (frame["monthly_charges"].to_numpy(float) - 65.0)
        + c["support_calls"] * frame["support_calls"].to_numpy(float)
        + c["has_partner"] * frame["has_partner"].to_numpy(float)
        + c["income_per_10k"] * (income - 55_000.0) / 10_000.0
        + frame["plan"].map(PLAN_EFFECT).to_numpy(float)
    )


def churn_probability(frame: pd.DataFrame, drift: bool = False) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-churn_logit(frame, drift)))


def _customers(rng: np.random.Generator, n: int, drift: bool) -> pd.DataFrame:
    pool = max(10, int(n * 0.8))  # some customers appear more than once
    plan = rng.choice(PLANS, size=n, p=(0.45, 0.35, 0.2))
    charges = np.array([PLAN_PRICE[p] for p in plan]) + rng.normal(0.0, 8.0, n)
    income = rng.lognormal(np.log(52_000.0), 0.45, n)
    if drift:
        charges, income = charges * 1.15 + 5.0, income * 1.3
    income[rng.random(n) < (0.2 if drift else 0.08)] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in rng.integers(0, pool, n)],
            "tenure_months": np.clip(rng.gamma(2.0, 12.0, n), 0, 72).astype("int64"),
            "monthly_charges": np.round(np.clip(charges, 10.0, None), 2),
            "support_calls": rng.poisson(2.2 if drift else 1.5, n).astype("int64"),
            "income": np.round(income, 0),
            "region": rng.choice(_regions(drift), size=n, p=_region_shares(drift)),
            "plan": plan,
            "has_partner": rng.random(n) < 0.45,
        }
    )


def _regions(drift: bool) -> tuple[str, ...]:
    return (*REGIONS, DRIFT_REGION) if drift else REGIONS


def _region_shares(drift: bool) -> tuple[float, ...]:
    return (0.25, 0.2, 0.2, 0.2, 0.15) if drift else (0.3, 0.25, 0.25, 0.2)


def _times(rng: np.random.Generator, n: int, end: pd.Timestamp) -> pd.Series:
    offsets = np.sort(rng.random(n)) * timedelta(days=SPAN_DAYS).total_seconds()
    start = end - pd.Timedelta(days=SPAN_DAYS)
    return pd.Series(start + pd.to_timedelta(np.round(offsets, 3), unit="s")).astype(
        "datetime64[us, UTC]"
    )


def _lifetime_value(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    months_left = (
        6.0 + 0.5 * frame["tenure_months"].to_numpy(float) - 8.0 * frame["churned"].to_numpy(float)
    )
    value = frame["monthly_charges"].to_numpy(float) * np.clip(months_left, 1.0, None)
    return np.round(value + rng.normal(0.0, 40.0, len(frame)), 2)


def describe() -> dict[str, Any]:
    """What the generator promises, for docs and tests."""
    return {
        "coefficients": COEFFICIENTS,
        "drifted": DRIFTED,
        "regions": REGIONS,
        "drift_region": DRIFT_REGION,
        "plans": PLANS,
        "span_days": SPAN_DAYS,
    }


def write_csv(path: str, n_rows: int = 500, seed: int = 7) -> None:
    """The table as a CSV file: examples/data/churn_small.csv is `write_csv(that path)`."""
    frame = generate(n_rows, seed)
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    frame["income"] = frame["income"].astype("Int64")  # whole numbers; a gap stays empty
    frame.to_csv(path, index=False, lineterminator="\n")


if __name__ == "__main__":  # python -m trainers.demo_data PATH: regenerate the example CSV
    import sys

    write_csv(sys.argv[1])
