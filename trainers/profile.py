"""What a dataset is, by content: fingerprint, shape, time range and a reference profile.

Fingerprint: sha256 over the column header (names and logical types, sorted by name)
and the sorted sha256 digests of each row's canonical JSON (values in column-name
order, numbers as JSON numbers, missing as null, instants as UTC strings). So the same
multiset of rows over the same typed columns has the same fingerprint whatever the row
or column order, the file format or the pandas version.

Personal features never appear in plaintext: numbers are summarised by coarse buckets
(two significant digits, quintile edges), categories by keyed hashes of their values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainers.plain import instant, to_plain

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_CATEGORIES = 50
MIN_PERSONAL_COUNT = 10  # a hashed personal category rarer than this joins "other"
Hasher = Callable[[str], str]


def logical_type(column: pd.Series) -> str:
    kind = column.dtype.kind
    if kind == "M":
        return "time"
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer"
    if kind == "f":
        return "number"
    return "category"


def fingerprint(frame: pd.DataFrame) -> str:
    """A row- and column-order independent content hash (see the module docstring)."""
    names = sorted(map(str, frame.columns))
    header = json.dumps([[n, logical_type(frame[n])] for n in names], separators=(",", ":"))
    rows = _canonical_rows(frame[names])
    digests = sorted(hashlib.sha256(row.encode()).digest() for row in rows)
    total = hashlib.sha256(header.encode())
    for digest in digests:
        total.update(digest)
    return total.hexdigest()


def _canonical_rows(frame: pd.DataFrame) -> list[str]:
    columns = [_canonical_column(frame[name]) for name in frame.columns]
    return [
        json.dumps(row, separators=(",", ":"), ensure_ascii=False)
        for row in zip(*columns, strict=True)
    ]


def _canonical_column(column: pd.Series) -> list[Any]:
    if column.dtype.kind == "M":
        return [instant(v) for v in column]
    return [to_plain(v) for v in column.astype(object).tolist()]


def describe_dataset(frame: pd.DataFrame, time_column: str | None) -> dict[str, Any]:
    """Fingerprint, rows, columns and time range: what Ledger.register_dataset records."""
    return {
        "fingerprint": fingerprint(frame),
        "rows": int(len(frame)),
        "columns": [
            {"name": str(c), "dtype": str(frame[c].dtype), "type": logical_type(frame[c])}
            for c in frame.columns
        ],
        "time_range": time_range(frame, time_column),
    }


def time_range(frame: pd.DataFrame, column: str | None) -> dict[str, Any] | None:
    if not column or frame.empty:
        return None
    times = frame[column].dropna()
    return (
        {"column": column, "start": instant(times.min()), "end": instant(times.max())}
        if len(times)
        else None
    )


def reference_profile(
    frame: pd.DataFrame, features: Sequence[Mapping[str, Any]], hasher: Hasher
) -> dict[str, Any]:
    """Per feature: nulls, and quantiles/range/moments or category shares; personal ones coarsened."""
    return {f["name"]: feature_profile(frame[f["name"]], f, hasher) for f in features}


def feature_profile(
    column: pd.Series, feature: Mapping[str, Any], hasher: Hasher
) -> dict[str, Any]:
    base = {
        "type": feature["type"],
        "personal": bool(feature.get("personal")),
        "count": int(column.notna().sum()),
        "null_share": float(column.isna().mean()) if len(column) else 0.0,
    }
    values = column.dropna()
    if feature["type"] == "category":
        return {
            **base,
            **(_hashed_categories(values, hasher) if base["personal"] else _categories(values)),
        }
    if feature["type"] == "boolean":
        return {**base, "true_share": float(values.mean()) if len(values) else None}
    numbers = values.astype("float64")
    return {**base, **(_buckets(numbers) if base["personal"] else _numbers(numbers))}


def _numbers(values: pd.Series) -> dict[str, Any]:
    if values.empty:
        return {
            "min": None,
            "max": None,
            "mean": None,
            "std": None,
            "quantiles": {},
            "histogram": None,
        }
    edges = np.unique(values.quantile(np.linspace(0, 1, 11)).to_numpy())
    counts, _ = (
        np.histogram(values, bins=edges) if len(edges) > 1 else (np.array([len(values)]), None)
    )
    return to_plain(
        {
            "min": values.min(),
            "max": values.max(),
            "mean": values.mean(),
            "std": values.std(ddof=0),
            "quantiles": {str(q): values.quantile(q) for q in QUANTILES},
            "histogram": {"edges": edges, "shares": counts / len(values)},
        }
    )


def _buckets(values: pd.Series) -> dict[str, Any]:
    """Shares between coarse quintile edges (open-ended outer buckets): no raw value kept."""
    if values.empty:
        return {"buckets": None}
    edges = sorted({_two_digits(v) for v in values.quantile([0.2, 0.4, 0.6, 0.8])})
    counts = np.bincount(
        np.searchsorted(edges, values.to_numpy(), side="right"), minlength=len(edges) + 1
    )
    return to_plain({"buckets": {"inner_edges": edges, "shares": counts / len(values)}})


def _two_digits(value: float) -> float:
    return float(f"{value:.2g}")


def _categories(values: pd.Series) -> dict[str, Any]:
    shares = values.value_counts(normalize=True, sort=True)
    top = shares.iloc[:MAX_CATEGORIES]
    return {
        "distinct": int(len(shares)),
        "frequencies": {str(k): float(v) for k, v in top.items()},
        "other_share": float(shares.iloc[MAX_CATEGORIES:].sum()),
    }


def _hashed_categories(values: pd.Series, hasher: Hasher) -> dict[str, Any]:
    counts = values.astype(str).value_counts()
    common = counts[counts >= MIN_PERSONAL_COUNT].iloc[:MAX_CATEGORIES]
    total = max(len(values), 1)
    return {
        "distinct": int(len(counts)),
        "hashed_frequencies": {hasher(str(k)): float(v / total) for k, v in common.items()},
        "other_share": float((counts.sum() - common.sum()) / total),
    }
