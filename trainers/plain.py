"""Plain, JSON-safe Python values at the boundary between numpy/pandas and events."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd


def to_plain(value: Any) -> Any:
    """Convert numpy/pandas values, recursively, to JSON-safe Python (NaN becomes None)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v) for v in items]
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (pd.Timestamp, datetime)):
        return instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    if hasattr(value, "get_params"):  # an estimator inside params: name its class
        return f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def instant(value: Any) -> str | None:
    """An ISO-8601 UTC instant with a `Z`, microsecond precision; naive means UTC."""
    if value is None or value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def params_plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Estimator parameters as JSON-safe values; NaN markers kept as the string 'nan'."""
    out = {}
    for key, value in sorted(params.items()):
        if isinstance(value, float) and math.isnan(value):
            out[key] = "nan"  # e.g. SimpleImputer(missing_values=nan): keep what it means
        else:
            out[key] = to_plain(value)
    return out
