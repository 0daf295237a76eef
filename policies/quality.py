"""Data quality against a reference profile: pure computations, no I/O.

PSI and the two-sample KS test per feature, null share, ranges, unseen categories,
types against the deployment's schema, and the share of rows an IsolationForest
scores as outliers. The result is the payload of a `QualityCheck.Recorded` event.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,  # the usual "significant shift" line for PSI
    "ks_pvalue": 0.01,
    "ks_statistic": 0.1,  # with large samples any shift is "significant"; require a real distance
    "null_share_increase": 0.1,
    "out_of_range_share": 0.05,
    "unseen_share": 0.05,
    "outlier_share": 0.05,  # the score cut flags 1% of training rows: 5x that fails
    "type_error_share": 0.0,
    "min_rows": 30,  # fewer rows say nothing about a distribution
}
EPSILON = 1e-4  # keeps the logarithm finite for empty bins
OutlierScorer = Callable[[Sequence[Mapping[str, Any]]], np.ndarray]


def thresholds_from(settings: Mapping[str, Any] | None) -> dict[str, float]:
    """The defaults overridden by a deployment's `quality_thresholds` setting."""
    overrides = (settings or {}).get("quality_thresholds") or {}
    return {
        **DEFAULT_THRESHOLDS,
        **{k: float(v) for k, v in overrides.items() if k in DEFAULT_THRESHOLDS},
    }


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_points(profile: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, values) of a numeric feature's reference quantiles, min and max included."""
    quantiles = profile["quantiles"]
    if isinstance(quantiles, Mapping):
        pairs = sorted((float(p), float(v)) for p, v in quantiles.items())
    else:
        pairs = list(
            zip(np.linspace(0.0, 1.0, len(quantiles)).tolist(), map(float, quantiles), strict=True)
        )
    edges = (profile.get("histogram") or {}).get("edges") or []
    if len(edges) == 11:  # untied decile edges: more knots for the quantile function
        known = {p for p, _ in pairs}
        pairs = sorted(
            pairs
            + [
                (i / 10, float(e))
                for i, e in enumerate(edges)
                if 0 < i < 10 and i / 10 not in known
            ]
        )
    if pairs and pairs[0][0] > 0 and profile.get("min") is not None:
        pairs.insert(0, (0.0, float(profile["min"])))
    if pairs and pairs[-1][0] < 1 and profile.get("max") is not None:
        pairs.append((1.0, float(profile["max"])))
    return np.array([p for p, _ in pairs]), np.array([v for _, v in pairs])


def numeric_bins(profile: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Interior bin edges from the reference quantiles, and the reference share of each bin.

    Bins are (-inf, e1], (e1, e2], ..., (ek, inf); tied quantiles merge into one edge
    that holds the mass up to the highest probability at that value.
    """
    probs, values = quantile_points(profile)
    inner = (probs > 0) & (probs < 1)
    mass_to: dict[float, float] = {}
    for p, v in zip(probs[inner], values[inner], strict=True):
        mass_to[float(v)] = max(float(p), mass_to.get(float(v), 0.0))
    edges = np.array(sorted(mass_to))
    cumulative = np.array([0.0, *[mass_to[e] for e in edges], 1.0])
    return edges, np.diff(cumulative)


def numeric_psi(profile: Mapping[str, Any], values: np.ndarray) -> float:
    """PSI over the reference histogram's decile bins if it has one, else its quantile bins."""
    histogram = profile.get("histogram")
    if histogram and len(histogram.get("edges") or []) > 2:
        edges, expected = np.asarray(histogram["edges"][1:-1], dtype=float), histogram["shares"]
        bins = np.searchsorted(edges, values, side="right")  # np.histogram's [a, b) bins
    else:
        edges, expected = numeric_bins(profile)
        bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=len(expected))
    return psi(expected, counts / max(len(values), 1))


def categorical_psi(frequencies: Mapping[str, float], values: Sequence[Any]) -> float:
    """PSI over the reference categories plus one bin for every unseen category."""
    seen = [str(v) for v in values]
    total = max(len(seen), 1)
    categories = list(frequencies)
    expected = [float(frequencies[c]) for c in categories] + [0.0]
    observed = [seen.count(c) / total for c in categories]
    observed.append(1.0 - sum(observed))
    norm = sum(expected) or 1.0
    return psi([e / norm for e in expected], observed)


def reference_sample(profile: Mapping[str, Any], size: int = 200) -> np.ndarray:
    """A stored sample if the profile has one, else the quantile function at `size` points."""
    if profile.get("sample"):
        return np.asarray(profile["sample"], dtype=float)
    probs, values = quantile_points(profile)
    return np.interp((np.arange(size) + 0.5) / size, probs, values)


def ks_test(profile: Mapping[str, Any], values: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value (scipy.stats.ks_2samp)."""
    result = stats.ks_2samp(reference_sample(profile), values)
    return float(result.statistic), float(result.pvalue)


@dataclass
class Report:
    """What a quality check found: per-feature figures, one result per check, the failures."""

    rows: int
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    outliers: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        check: str,
        feature: str | None,
        value: float,
        threshold: float,
        passed: bool | None = None,
    ) -> None:
        passed = value <= threshold if passed is None else passed
        self.results.append(
            {
                "check": check,
                "feature": feature,
                "value": _round(value),
                "threshold": threshold,
                "passed": bool(passed),
            }
        )

    @property
    def failing(self) -> list[str]:
        return [
            f"{r['check']}:{r['feature']}" if r["feature"] else r["check"]
            for r in self.results
            if not r["passed"]
        ]


def _round(value: float) -> float:
    return round(float(value), 6) if math.isfinite(value) else value


TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "category": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
}


class CheckedRows(NamedTuple):
    """Rows checked against the deployment's schema: each as loaded (None when it does not
    load), and each bad row's errors by field."""

    loaded: list[Mapping[str, Any] | None]
    errors: dict[int, dict[str, str]]


# Rows in, each loaded (None for a bad row) with its field errors: the prediction path's
# row schema (serving/rows.py), handed down by the caller since policies cannot import it.
RowChecker = Callable[[Mapping[str, Any], Sequence[Any]], CheckedRows]


def recorded_rows(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> CheckedRows:
    """Features of recorded predictions, which the prediction path loaded when they were made:
    all are kept, and a value the schema (changed since) no longer takes is reported.

    Absent fields are not errors here: sealed personal features are not stored in the clear.
    """
    features = {f["name"]: f for f in schema["features"]}
    errors: dict[int, dict[str, str]] = {}
    for i, row in enumerate(rows):
        found = {name: "Unknown field." for name in sorted(set(row) - set(features))}
        for name, feature in features.items():
            if row.get(name) is not None and not TYPE_TESTS[feature["type"]](row[name]):
                found[name] = f"Not a valid {feature['type']}."
        if found:
            errors[i] = found
    return CheckedRows(list(rows), errors)


def error_summary(index: int, errors: Mapping[str, str]) -> str:
    """One line naming a bad row and what is wrong with each of its fields."""
    return f"row {index}: " + "; ".join(f"{name}: {message}" for name, message in errors.items())


def may_be_missing(feature: Mapping[str, Any]) -> bool:
    return not feature.get("required", False) and feature.get("nullable", True) is not False


def profile_features(profile: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per-feature reference entries, whether or not the profile nests them under `features`."""
    if not profile:
        return {}
    inner = profile.get("features")
    return dict(inner if isinstance(inner, Mapping) else profile)


def check_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    profile: Mapping[str, Any],
    thresholds: Mapping[str, float],
    scorer: OutlierScorer | None = None,
    checked: CheckedRows | None = None,
) -> Report:
    """Check a batch of rows against the schema and a reference profile.

    `checked`: the rows as the row schema loaded them; a bad row counts in the `schema`
    check and is left out of the feature and outlier checks. Without it the rows are
    recorded predictions' features (`recorded_rows`).
    """
    report = Report(rows=len(rows))
    checked = checked or recorded_rows(rows, schema)
    bad = sorted(checked.errors)
    report.add("schema", None, len(bad) / max(len(rows), 1), thresholds["type_error_share"])
    report.outliers.update(
        bad_rows=len(bad),
        type_errors=[error_summary(i, checked.errors[i]) for i in bad[:20]],
        field_errors=dict(Counter(f for i in bad for f in checked.errors[i])),
    )
    kept = [(i, row) for i, row in enumerate(checked.loaded) if row is not None]
    good = [row for _, row in kept]
    names = {f["name"] for f in schema["features"]}
    for name, reference in profile_features(profile).items():
        if name in names and isinstance(reference, Mapping) and not reference.get("personal"):
            report.features[name] = check_feature(
                report, name, reference, [r.get(name) for r in good], thresholds
            )
    if scorer is not None and good:  # a bad row is no input a model would ever be given
        flags, by_rule = flag_in_batches(scorer, good)
        share = float(flags.mean())
        flagged = [kept[int(j)][0] for j in np.flatnonzero(flags)]
        report.outliers.update(share=_round(share), rows=flagged)
        if by_rule is not None:
            report.outliers.update(by_rule=by_rule, detector=scorer.describe())  # type: ignore[attr-defined]
        report.add("outliers", None, share, thresholds["outlier_share"])
    return report


def check_feature(
    report: Report,
    name: str,
    reference: Mapping[str, Any],
    values: list[Any],
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """Null share, then range and drift (numbers) or unseen categories and drift (categories)."""
    present = [v for v in values if v is not None]
    null_share = 1 - len(present) / max(len(values), 1)
    allowed = float(reference.get("null_share", 0.0)) + thresholds["null_share_increase"]
    report.add("null_share", name, null_share, round(allowed, 6))
    figures: dict[str, Any] = {"rows": len(values), "null_share": _round(null_share)}
    if reference.get("quantiles"):
        numbers = np.array([float(v) for v in present if TYPE_TESTS["number"](v)], dtype=float)
        figures.update(numeric_figures(report, name, reference, numbers, thresholds))
    elif reference.get("frequencies") or reference.get("categories"):
        frequencies = reference.get("frequencies") or reference["categories"]
        figures.update(category_figures(report, name, frequencies, present, thresholds))
    elif reference.get("true_share") is not None:
        figures.update(
            boolean_figures(report, name, float(reference["true_share"]), present, thresholds)
        )
    return figures


def boolean_figures(
    report: Report, name: str, true_share: float, values: list[Any], thresholds: Mapping[str, float]
) -> dict[str, Any]:
    if len(values) < thresholds["min_rows"]:
        return {"psi": None}
    observed = sum(1 for v in values if v is True) / len(values)
    value = psi([true_share, 1 - true_share], [observed, 1 - observed])
    report.add("drift_psi", name, value, thresholds["psi"])
    return {"psi": _round(value), "true_share": _round(observed)}


def numeric_figures(
    report: Report,
    name: str,
    reference: Mapping[str, Any],
    values: np.ndarray,
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    _, points = quantile_points(reference)
    low, high = float(reference.get("min", points[0])), float(reference.get("max", points[-1]))
    outside = float(np.mean((values < low) | (values > high))) if len(values) else 0.0
    report.add("range", name, outside, thresholds["out_of_range_share"])
    figures: dict[str, Any] = {
        "out_of_range_share": _round(outside),
        "psi": None,
        "ks_statistic": None,
        "ks_pvalue": None,
        "mean": _round(float(values.mean())) if len(values) else None,
    }
    if len(values) >= thresholds["min_rows"]:
        value, (statistic, pvalue) = numeric_psi(reference, values), ks_test(reference, values)
        figures.update(psi=_round(value), ks_statistic=_round(statistic), ks_pvalue=_round(pvalue))
        report.add("drift_psi", name, value, thresholds["psi"])
        if reference.get("type", "number") == "number" or reference.get("sample"):
            # KS assumes continuous data: ties in integer data against a sample rebuilt from
            # quantiles reject even the reference itself, so integers rely on PSI.
            ks_drift = pvalue < thresholds["ks_pvalue"] and statistic > thresholds["ks_statistic"]
            report.add("drift_ks", name, statistic, thresholds["ks_statistic"], passed=not ks_drift)
    return figures


def category_figures(
    report: Report,
    name: str,
    frequencies: Mapping[str, float],
    values: list[Any],
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    unseen = [v for v in values if str(v) not in frequencies]
    share = len(unseen) / max(len(values), 1)
    report.add("unseen_categories", name, share, thresholds["unseen_share"])
    figures: dict[str, Any] = {
        "unseen_share": _round(share),
        "unseen": sorted({str(v) for v in unseen})[:10],
        "psi": None,
    }
    if len(values) >= thresholds["min_rows"]:
        value = categorical_psi(frequencies, values)
        figures["psi"] = _round(value)
        report.add("drift_psi", name, value, thresholds["psi"])
    return figures


def score_in_batches(
    scorer: OutlierScorer, rows: list[Mapping[str, Any]], batch_size: int = 10_000
) -> np.ndarray:
    """Outlier flags scored in micro-batches: one IsolationForest call costs ~7.5 ms however small."""
    parts = [
        np.asarray(scorer(rows[i : i + batch_size])).astype(bool)
        for i in range(0, len(rows), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def flag_in_batches(
    scorer: OutlierScorer, rows: list[Mapping[str, Any]], batch_size: int = 10_000
) -> tuple[np.ndarray, dict[str, int] | None]:
    """Outlier flags, and for a detector with rules (policies.outliers) how many each flagged."""
    rules = getattr(scorer, "rules", None)
    if rules is None:
        return score_in_batches(scorer, rows, batch_size), None
    parts: list[np.ndarray] = []
    found: Counter[str] = Counter()
    for i in range(0, len(rows), batch_size):
        flagged = rules(rows[i : i + batch_size])
        found.update({name: int(np.count_nonzero(f)) for name, f in flagged.items()})
        parts.append(np.logical_or.reduce(list(flagged.values())))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool), dict(found)
