"""Shared set-up for the API tests: an app on the test ledger, keys, tiny trained models."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from falcon.testing import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from api.app import create_app
from ledger.application import Ledger
from ledger.artifacts import dumps_skops

SCHEMA = {
    "features": [
        {"name": "age", "type": "number", "nullable": True},
        {"name": "income", "type": "number"},
        {"name": "plan", "type": "category", "nullable": True},
        {"name": "active", "type": "boolean", "nullable": True},
        {"name": "visits", "type": "integer", "nullable": True},
        {"name": "customer", "type": "category", "personal": True, "nullable": True},
    ],
    "subject_field": "customer",
}
ROW = {
    "age": 41.0,
    "income": 52000.0,
    "plan": "basic",
    "active": True,
    "visits": 3,
    "customer": "c-1",
}
PLANS = ["basic", "plus", "pro"]


@dataclass
class Api:
    """A test client with one key per role."""

    client: TestClient
    ledger: Ledger
    keys: dict[str, str]

    def call(self, method: str, path: str, role: str | None = "admin", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        return self.client.simulate_request(method, path, headers=headers, **kwargs)


def make_api(ledger: Ledger) -> Api:
    keys = {
        role: ledger.issue_api_key(role=role, actor="test")[1]
        for role in ("admin", "predictor", "auditor")
    }
    return Api(TestClient(create_app(ledger=ledger)), ledger, keys)


def training_frame(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows as [age, income, plan] objects (NaN / None for missing) and yes/no labels."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, n)
    income = rng.uniform(10_000, 120_000, n)
    plan = rng.choice(PLANS, n)
    label = np.where(income / 1000 + age > 90, "yes", "no")
    rows = np.empty((n, 3), dtype=object)
    rows[:, 0], rows[:, 1], rows[:, 2] = age, income, plan
    rows[::17, 0] = np.nan
    rows[::13, 2] = None
    return rows, label


def pipeline(estimator: Any, numeric: list[int], categorical: list[int]) -> Pipeline:
    parts: list[Any] = [
        (
            "num",
            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            numeric,
        )
    ]
    if categorical:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent", missing_values=None)),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return Pipeline(
        [("prepare", ColumnTransformer(parts, sparse_threshold=0.0)), ("model", estimator)]
    )


ESTIMATORS = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "tree": lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
    "always_yes": lambda: DummyClassifier(strategy="constant", constant="yes"),
    "always_no": lambda: DummyClassifier(strategy="constant", constant="no"),
}


@functools.cache
def fitted(kind: str, reversed_columns: bool) -> tuple[bytes, list[str], str]:
    """(skops bytes, features, algorithm) of a tiny fitted pipeline; fitted once per test run."""
    rows, labels = training_frame()
    features = ["age", "income", "plan"]
    if reversed_columns:  # the model reads its columns in another order than the schema
        rows, features = rows[:, [2, 1, 0]], ["plan", "income", "age"]
    plan_index = features.index("plan")
    numeric = [i for i in range(3) if i != plan_index]
    model = pipeline(ESTIMATORS[kind](), numeric, [plan_index]).fit(rows, labels)
    return dumps_skops(model), features, type(model[-1]).__name__


def register_model(ledger: Ledger, kind: str, reversed_columns: bool = False) -> str:
    """Store a tiny pipeline's skops bytes, record a training run with a profile and the model."""
    content, features, algorithm = fitted(kind, reversed_columns)
    digest = ledger.artifacts.put(content)
    run_id = ledger.start_training(
        spec_name=f"test-{kind}",
        spec={"name": kind},
        deployment=None,
        dataset_ids={},
        features=features,
        target="label",
        algorithm=algorithm,
        params={"kind": kind},
        code_version={"commit": "test"},
        trigger=None,
        actor="test",
    )
    profile = {
        "age": {"min": 18.0, "max": 80.0},
        "income": {"min": 10_000.0, "max": 120_000.0},
        "plan": {"frequencies": {p: 1 / 3 for p in PLANS}},
    }
    model_id = ledger.finish_training(
        run_id,
        {
            "name": f"m-{kind}",
            "artifact_digest": digest,
            "features": features,
            "algorithm": algorithm,
            "task": "classification",
            "classes": ["no", "yes"],
            "actor": "test",
        },
        metrics={"accuracy": 0.9},
        artifact_digest=digest,
        reference_profile=profile,
        trained_subjects=None,
        actor="test",
    )
    return str(model_id)


def create_deployment(api: Api, name: str = "churn", policy: dict | None = None) -> Any:
    body = {
        "name": name,
        "task": "classification",
        "schema": SCHEMA,
        "policy": policy or {"name": "manual"},
        "positive_label": "yes",
        "outcome_maturity_days": 0,
    }
    return api.call("POST", "/v1/deployments", json=body)


def deployment_with_models(
    api: Api,
    kinds: tuple[str, ...] = ("logistic", "tree"),
    name: str = "churn",
    policy: dict | None = None,
) -> list[str]:
    assert create_deployment(api, name, policy).status_code == 201
    model_ids = []
    for index, kind in enumerate(kinds):
        model_id = register_model(api.ledger, kind, reversed_columns=index % 2 == 1)
        result = api.call("POST", f"/v1/deployments/{name}/models", json={"model_id": model_id})
        assert result.status_code == 201, result.text
        model_ids.append(model_id)
    return model_ids


def predict(api: Api, body: dict, name: str = "churn", role: str = "predictor") -> Any:
    return api.call("POST", f"/v1/deployments/{name}/predictions", role=role, json=body)
