"""Cheap inline input-quality flags: missing, out of the training range, unseen category.

Each active model's training run left a reference profile per feature. The flags use
the narrowest view across the active models: a value is out of range (or a category
unseen) when at least one model that reads the feature never saw such a value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Span(NamedTuple):
    """A numeric feature's training range, both ends included."""

    low: float
    high: float


@dataclass
class Profile:
    """Per feature: the allowed numeric range and the known categories."""

    ranges: dict[str, Span] = field(default_factory=dict)
    categories: dict[str, frozenset[str]] = field(default_factory=dict)
    names: tuple[str, ...] = ()


def numeric_range(summary: dict[str, Any]) -> Span | None:
    """(min, max) from a feature summary: min/max keys, a range pair or quantiles."""
    if (
        "min" in summary
        and "max" in summary
        and summary["min"] is not None
        and summary["max"] is not None
    ):
        return Span(float(summary["min"]), float(summary["max"]))
    pair = summary.get("range")
    if isinstance(pair, list | tuple) and len(pair) == 2 and None not in pair:
        return Span(float(pair[0]), float(pair[1]))
    quantiles = summary.get("quantiles")
    if isinstance(quantiles, dict) and quantiles:
        keys = sorted(quantiles, key=float)
        return Span(float(quantiles[keys[0]]), float(quantiles[keys[-1]]))
    return None


def known_categories(summary: dict[str, Any]) -> frozenset[str] | None:
    for key in ("categories", "frequencies", "category_frequencies"):
        value = summary.get(key)
        if isinstance(value, dict | list | tuple):
            return frozenset(str(v) for v in value)
    return None


def _features_of(profile: dict[str, Any]) -> dict[str, Any]:
    inner = profile.get("features")
    return inner if isinstance(inner, dict) else profile


def merged_profile(profiles: Iterable[dict[str, Any] | None], schema: dict[str, Any]) -> Profile:
    """The narrowest range and category set per feature across the models' profiles."""
    merged = Profile(names=tuple(f["name"] for f in schema["features"]))
    for profile in profiles:
        for name, summary in _features_of(profile or {}).items():
            if not isinstance(summary, dict) or summary.get("personal"):
                continue
            span = numeric_range(summary)
            if span is not None:
                old = merged.ranges.get(name, Span(-math.inf, math.inf))
                merged.ranges[name] = Span(max(old.low, span.low), min(old.high, span.high))
            seen = known_categories(summary)
            if seen is not None:
                merged.categories[name] = merged.categories.get(name, seen) & seen
    return merged


def row_flags(profile: Profile, row: dict[str, Any]) -> list[str]:
    """`missing:f`, `out_of_range:f`, `unseen_category:f` for one validated row."""
    flags = []
    for name in profile.names:
        value = row.get(name)
        if value is None:
            flags.append(f"missing:{name}")
        elif name in profile.ranges and not isinstance(value, bool | str):
            lo, hi = profile.ranges[name]
            if value < lo or value > hi:
                flags.append(f"out_of_range:{name}")
        elif name in profile.categories and str(value) not in profile.categories[name]:
            flags.append(f"unseen_category:{name}")
    return flags
