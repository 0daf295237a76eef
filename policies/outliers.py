"""Which rows are outliers: the training-calibrated detector score, plus two plain rules.

A row is an outlier when any of these holds:
- `score`: the IsolationForest scores it below the threshold recorded with the detector
  (the 1% quantile of the training rows' scores);
- `out_of_range`: a number lies beyond a fence recorded at training (min - k*IQR or
  max + k*IQR of the training values);
- `unseen_category`: a category level the model's encoder never saw in training.

The rules are there because a forest cannot see either case: a value past the training
range lands in the same leaves as the training extreme, and an unseen level encodes as
all zeros, which looks ordinary. Detectors recorded before the threshold and fences were
stored still load: the threshold falls back to the recorded 1% quantile of the training
scores (else the forest's own `predict`), and the fences are rebuilt from the profile's
min, max and quartiles with the same multiple.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from policies.quality import profile_features
from trainers.matrix import category_text, rows_to_matrix

SCORE_QUANTILE = "0.01"  # the quantile detectors recorded before the threshold was stored
DEFAULT_IQR_MULTIPLE = 3.0
RULES = ("score", "out_of_range", "unseen_category")


@dataclass
class OutlierDetector:
    """A fitted detector with its threshold, fences and known categories; rows -> flags."""

    detector: Any  # a fitted pipeline with score_samples (and predict)
    layout: list[dict[str, Any]]  # the model's input columns (trainers.steps.input_layout)
    threshold: float | None
    fences: dict[str, tuple[float, float]]
    categories: dict[str, frozenset[str]]
    iqr_multiple: float

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        found = self.rules(rows)
        return np.logical_or.reduce([found[r] for r in RULES])

    def rules(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """Per rule, which rows it flags."""
        return {
            "score": self._scored(rows),
            "out_of_range": self._outside(rows),
            "unseen_category": self._unseen(rows),
        }

    def describe(self) -> dict[str, Any]:
        """What the flags were measured against, for the check's record."""
        return {
            "threshold": self.threshold,
            "iqr_multiple": self.iqr_multiple,
            "fences": {name: list(span) for name, span in self.fences.items()},
            "rules": list(RULES),
        }

    def _scored(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        matrix = rows_to_matrix(rows, self.layout)
        if self.threshold is None:
            return np.asarray(self.detector.predict(matrix)) == -1
        return np.asarray(self.detector.score_samples(matrix)) < self.threshold

    def _outside(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        flags = np.zeros(len(rows), dtype=bool)
        for name, (low, high) in self.fences.items():
            values = np.array([_number(row.get(name)) for row in rows], dtype=float)
            flags |= (values < low) | (values > high)  # NaN (missing) compares False
        return flags

    def _unseen(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        flags = np.zeros(len(rows), dtype=bool)
        for name, known in self.categories.items():
            levels = (category_text(row.get(name)) for row in rows)
            flags |= np.array([v is not None and v not in known for v in levels], dtype=bool)
        return flags


def detector_from(detector: Any, profile: Mapping[str, Any]) -> OutlierDetector:
    """The detector with the cut and rules its training profile recorded (or their fallbacks)."""
    info = profile.get("outlier_detector") or {}
    layout = list(profile.get("input") or [])
    multiple = float(info.get("fence_iqr_multiple", DEFAULT_IQR_MULTIPLE))
    threshold = info.get("threshold")
    if threshold is None:
        threshold = (info.get("training_score_quantiles") or {}).get(SCORE_QUANTILE)
    recorded = info.get("fences")
    fences = (
        {n: (float(f["low"]), float(f["high"])) for n, f in recorded.items()}
        if isinstance(recorded, Mapping)
        else fences_from_profile(profile, multiple)
    )
    categories = {
        c["name"]: frozenset(category_text(v) or "" for v in c["categories"])
        for c in layout
        if c.get("type") == "category" and c.get("categories") is not None
    }
    return OutlierDetector(
        detector,
        layout,
        None if threshold is None else float(threshold),
        fences,
        categories,
        multiple,
    )


def fences_from_profile(
    profile: Mapping[str, Any], multiple: float
) -> dict[str, tuple[float, float]]:
    """Fences for a detector recorded without them: the profile's min, max and quartiles."""
    fences = {}
    for name, entry in profile_features(profile).items():
        if not isinstance(entry, Mapping) or entry.get("personal") or not entry.get("quantiles"):
            continue
        quantiles = entry["quantiles"]
        if entry.get("min") is None or not isinstance(quantiles, Mapping):
            continue
        low, high = float(entry["min"]), float(entry["max"])
        q25, q75 = float(quantiles.get("0.25", low)), float(quantiles.get("0.75", high))
        spread = (q75 - q25) or (high - low)
        fences[name] = (low - multiple * spread, high + multiple * spread)
    return fences


def _number(value: Any) -> float:
    if value is None or isinstance(value, str):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
