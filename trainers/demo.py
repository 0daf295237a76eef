"""The specs `ledger serve --demo` trains: two churn classifiers and two lifetime-value regressors.

Forests rather than gradient boosting for the second variant: skops writes 80 boosted
trees in seconds, 30 forest trees in a tenth of one (measured while training the demo).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trainers.spec import load_spec

DEMO_ROWS = 3000
DEMO_FEATURES = [
    {"name": "tenure_months", "type": "integer"},
    {"name": "monthly_charges", "type": "number"},
    {"name": "support_calls", "type": "integer"},
    {"name": "income", "type": "number", "nullable": True},
    {"name": "region", "type": "category"},
    {"name": "plan", "type": "category"},
    {"name": "has_partner", "type": "boolean"},
]
VARIANTS = (  # (name, deployment, target, algorithm, params)
    (
        "churn-logistic",
        "churn",
        "churned",
        "sklearn.linear_model.LogisticRegression",
        {"max_iter": 1000},
    ),
    (
        "churn-forest",
        "churn",
        "churned",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 30, "max_depth": 6, "min_samples_leaf": 5},
    ),
    (
        "lifetime-value-ridge",
        "lifetime-value",
        "lifetime_value",
        "sklearn.linear_model.Ridge",
        {"alpha": 1.0},
    ),
    (
        "lifetime-value-forest",
        "lifetime-value",
        "lifetime_value",
        "sklearn.ensemble.RandomForestRegressor",
        {"n_estimators": 30, "max_depth": 6, "min_samples_leaf": 5},
    ),
)


def demo_specs(
    end: datetime | str | None = None, rows: int = DEMO_ROWS, seed: int = 7, drift: bool = False
) -> list[dict[str, Any]]:
    """Normalised specs on the demo generator; data ends at `end` (default: today, 00:00 UTC)."""
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        load_spec(_spec(*variant, end=end, rows=rows, seed=seed, drift=drift))
        for variant in VARIANTS
    ]


def _spec(
    name: str,
    deployment: str,
    target: str,
    algorithm: str,
    params: dict[str, Any],
    *,
    end: datetime | str,
    rows: int,
    seed: int,
    drift: bool,
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"demo: {target} from the seeded churn generator",
        "deployment": deployment,
        "source": {
            "kind": "demo",
            "rows": rows,
            "seed": seed,
            "drift": drift,
            "end": end if isinstance(end, str) else end.isoformat(),
        },
        "target": target,
        "positive_label": 1 if target == "churned" else None,
        "features": [dict(f) for f in DEMO_FEATURES],
        "subject": "customer_id",
        "time_column": "event_time",
        "algorithm": algorithm,
        "params": dict(params),
        "seed": seed,
        "split": {"kind": "time", "test_fraction": 0.25},
    }
