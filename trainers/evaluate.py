"""Test metrics: binary ones on the positive label, macro averages otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm


def evaluate(
    model: Any, X: np.ndarray, y: np.ndarray, task: str, names: Sequence[str], positive: Any = None
) -> dict[str, float | None]:
    """The named metrics of a fitted model on (X, y); None where one is undefined."""
    predicted = model.predict(X)
    if task == "regression":
        found = regression_metrics(y, predicted)
    else:
        found = classification_metrics(y, predicted, positive)
        if "roc_auc" in names:
            found["roc_auc"] = roc_auc(model, X, y, positive)
    return {name: _finite(found.get(name)) for name in names}


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "mae": skm.mean_absolute_error(y, predicted),
        "rmse": math.sqrt(skm.mean_squared_error(y, predicted)),
        "r2": skm.r2_score(y, predicted) if len(y) > 1 else math.nan,
    }


def classification_metrics(y: np.ndarray, predicted: np.ndarray, positive: Any) -> dict[str, float]:
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": positive}
        if positive is not None
        else {"average": "macro"}
    )
    return {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, zero_division=0, **averaging),
        "recall": skm.recall_score(y, predicted, zero_division=0, **averaging),
        "f1": skm.f1_score(y, predicted, zero_division=0, **averaging),
    }


def roc_auc(model: Any, X: np.ndarray, y: np.ndarray, positive: Any) -> float | None:
    """ROC AUC from probabilities (or decision scores for binary); None if undefined."""
    classes = list(model.classes_)
    present = set(np.unique(y).tolist())
    if len(present) < 2 or not present <= set(classes):
        return None
    if hasattr(model, "predict_proba"):
        scores = model.predict_proba(X)
    elif len(classes) == 2 and hasattr(model, "decision_function"):
        return float(skm.roc_auc_score(y == positive, model.decision_function(X)))
    else:
        return None
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == positive, scores[:, classes.index(positive)]))
    if len(present) < len(classes):
        return None  # one-vs-rest needs every class in the test rows
    return float(skm.roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=classes))


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
