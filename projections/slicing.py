"""Slice values of a prediction's features: categories as they are, numbers binned.

Numeric features are binned by the reference profile's quantiles of the first model
with a profile that joined the deployment; the edges are then fixed for the
deployment, so a slice means the same thing for every prediction and every rebuild.
Bins are right-closed, as in policies/quality.py: (-inf, e1], (e1, e2], ..., (ek, inf).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

MISSING = "missing"
UNBINNED = "unbinned"  # a numeric feature before any reference profile gave it edges
ERASED = "erased"  # a forgotten subject's counts move here
NUMERIC = ("number", "integer")


def quantile_edges(profile: Mapping[str, Any] | None, feature: str) -> list[float] | None:
    """Sorted distinct interior edges from a profile's quantiles for one feature."""
    if not profile:
        return None
    entry = dict(profile.get("features", profile)).get(feature)
    if not isinstance(entry, Mapping) or "quantiles" not in entry:
        return None
    quantiles = entry["quantiles"]
    if isinstance(quantiles, Mapping):
        values = [
            v for p, v in sorted((float(p), v) for p, v in quantiles.items()) if 0.0 < p < 1.0
        ]
    else:
        values = list(quantiles)[1:-1] if len(quantiles) > 2 else list(quantiles)
    edges = sorted({float(v) for v in values if v is not None})
    return edges or None


_BIN_LABELS: dict[
    tuple[float, ...], list[str]
] = {}  # by edges: a rebuild labels every outcome's numbers


def bin_labels(edges: list[float]) -> list[str]:
    """The label of each bin, in order: `<=e1`, `(e1,e2]`, ..., `>ek`."""
    key = tuple(edges)
    labels = _BIN_LABELS.get(key)
    if labels is None:
        if len(_BIN_LABELS) > 1000:
            _BIN_LABELS.clear()
        labels = _BIN_LABELS[key] = [
            f"<={edges[0]:g}",
            *(f"({a:g},{b:g}]" for a, b in pairwise(edges)),
            f">{edges[-1]:g}",
        ]
    return labels


def bin_label(value: float, edges: list[float]) -> str:
    return bin_labels(edges)[bisect.bisect_left(edges, value)]


def slice_values(
    features: Mapping[str, Any], sliced: list[dict[str, Any]], bins: Mapping[str, list[float]]
) -> dict[str, str]:
    """{feature: slice value} for every sliceable schema feature."""
    return slicer(sliced, bins)(features)


def slicer(
    sliced: list[dict[str, Any]], bins: Mapping[str, list[float]]
) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """slice_values for one deployment's slicing, its per-feature choices made once (a
    rebuild slices every outcome's features)."""
    plan = []
    for spec in sliced:
        edges = bins.get(spec["name"]) or []
        plan.append(
            (spec["name"], spec["type"] in NUMERIC, edges, bin_labels(edges) if edges else [])
        )

    def values(features: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, numeric, edges, labels in plan:
            value = features.get(name)
            if value is None:
                out[name] = MISSING
            elif value is True or value is False:
                out[name] = "true" if value else "false"
            elif numeric:
                out[name] = labels[bisect.bisect_left(edges, float(value))] if edges else UNBINNED
            else:
                out[name] = str(value)
        return out

    return values


def sliceable(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Schema features whose plaintext the ledger holds (personal ones are sealed)."""
    return [
        {"name": f["name"], "type": f["type"]}
        for f in schema.get("features", [])
        if not f.get("personal") and f["name"] != schema.get("subject_field")
    ]
