"""Metrics from cube sums: a confusion matrix or error sums in, numbers with counts out.

Conventions follow scikit-learn with zero_division=0: binary precision, recall and F1
of the deployment's positive label when it has one, macro averages over every label
seen (actual or predicted) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def classification(
    confusion: Mapping[tuple[Any, Any], int], positive_label: Any = None
) -> dict[str, Any]:
    """accuracy, precision, recall, f1 and count from {(actual, predicted): n}."""
    count = sum(confusion.values())
    if count <= 0:
        return {"count": 0}
    correct = sum(n for (a, p), n in confusion.items() if a == p)
    labels = sorted({a for a, _ in confusion} | {p for _, p in confusion}, key=repr)
    if positive_label is not None:
        precision, recall, f1 = _per_label(confusion, positive_label)
        average = "binary"
    else:
        scores = [_per_label(confusion, label) for label in labels]
        precision, recall, f1 = (sum(s[i] for s in scores) / len(scores) for i in range(3))
        average = "macro"
    return {
        "count": count,
        "accuracy": correct / count,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "average": average,
    }


def _per_label(confusion: Mapping[tuple[Any, Any], int], label: Any) -> tuple[float, float, float]:
    tp = confusion.get((label, label), 0)
    predicted = sum(n for (_, p), n in confusion.items() if p == label)
    actual = sum(n for (a, _), n in confusion.items() if a == label)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def regression(n: float, sum_err: float, sum_abs: float, sum_sq: float) -> dict[str, Any]:
    """MAE, RMSE, mean error (bias) and count from the cube's error sums."""
    if n <= 0:
        return {"count": 0}
    return {
        "count": int(n),
        "mae": sum_abs / n,
        "rmse": math.sqrt(max(sum_sq, 0.0) / n),
        "mean_error": sum_err / n,
    }
