"""Training steps as pure functions: typed frame, split, pipeline, fit, evaluate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from trainers.matrix import NUMERIC_TYPES, category_text, frame_to_matrix
from trainers.plain import to_plain
from trainers.spec import InvalidSpec, resolve_estimator

Features = Sequence[Mapping[str, Any]]


def used_columns(spec: Mapping[str, Any]) -> list[str]:
    """The columns a spec reads: features, target, then subject and time column if any."""
    names = [f["name"] for f in spec["features"]] + [spec["target"]]
    return names + [c for c in (spec["subject"], spec["time_column"]) if c and c not in names]


def typed_frame(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Only the spec's columns, each coerced to its declared type; rows without a target dropped."""
    missing = [c for c in used_columns(spec) if c not in frame.columns]
    if missing:
        raise InvalidSpec(
            f"the data has no column {', '.join(map(repr, missing))}; it has {', '.join(map(str, frame.columns))}",
            field="features",
        )
    out = frame[used_columns(spec)].copy()
    for feature in spec["features"]:
        out[feature["name"]] = _coerce(out[feature["name"]], feature)
    out = out[out[spec["target"]].notna()].reset_index(drop=True)
    for feature in spec["features"]:
        _refuse_undeclared_gaps(out[feature["name"]], feature)
    if spec["subject"]:
        out[spec["subject"]] = (
            out[spec["subject"]].astype(object).where(out[spec["subject"]].notna(), None)
        )
    if spec["time_column"]:
        out[spec["time_column"]] = _times(out[spec["time_column"]], spec["time_column"])
    return out


def _refuse_undeclared_gaps(column: pd.Series, feature: Mapping[str, Any]) -> None:
    """A feature with missing values must say `nullable: true`, or its deployment refuses nulls.

    The pipeline would impute the gaps and train fine, but the deployment made from the
    spec takes its nullability from the spec, and would refuse the same gaps at serving time.
    """
    gaps = int(column.isna().sum())
    if gaps and not feature.get("nullable"):
        raise InvalidSpec(
            f"column {feature['name']!r} has {gaps} missing values of {len(column)} but its "
            "feature is not declared nullable: add `nullable: true` to it (missing values "
            "are then imputed, and accepted at serving time) or fill them in the data",
            field=f"features.{feature['name']}",
        )


def _coerce(column: pd.Series, feature: Mapping[str, Any]) -> pd.Series:
    try:
        if feature["type"] == "category":
            return column.astype(object).where(column.notna(), None).map(category_text)
        if feature["type"] == "boolean":
            return column.map(_boolean).astype("float64")
        return pd.to_numeric(column, errors="raise").astype("float64")
    except (ValueError, TypeError) as error:
        raise InvalidSpec(
            f"column {feature['name']!r} is not {feature['type']}: {error}", field="features"
        ) from None


def _boolean(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "yes", "t", "y"):
        return 1.0
    if text in ("false", "0", "0.0", "no", "f", "n"):
        return 0.0
    raise ValueError(f"{value!r} is not a boolean")


def _times(column: pd.Series, name: str) -> pd.Series:
    try:
        return pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as error:
        raise InvalidSpec(
            f"time column {name!r} holds no instants: {error}", field="time_column"
        ) from None


def split(frame: pd.DataFrame, spec: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows: by time (a cutoff or the latest fraction) or a seeded fraction."""
    how = spec["split"]
    if how["kind"] == "time":
        ordered = frame.sort_values(how["column"], kind="stable").reset_index(drop=True)
        if how["cutoff"]:
            is_test = ordered[how["column"]] >= pd.Timestamp(how["cutoff"])
        else:
            is_test = pd.Series(
                np.arange(len(ordered)) >= len(ordered) - _test_rows(len(ordered), how)
            )
        train, test = ordered[~is_test.to_numpy()], ordered[is_test.to_numpy()]
    elif how["stratify"]:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(
            frame,
            test_size=_test_rows(len(frame), how),
            random_state=how["seed"],
            stratify=frame[spec["target"]],
        )
    else:
        rng = np.random.default_rng(how["seed"])
        order = rng.permutation(len(frame))
        chosen = np.zeros(len(frame), dtype=bool)
        chosen[order[: _test_rows(len(frame), how)]] = True
        train, test = frame[~chosen], frame[chosen]
    if train.empty or test.empty:
        raise InvalidSpec(
            f"the split leaves {len(train)} training and {len(test)} test rows; move split.cutoff or test_fraction",
            field="split",
        )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _test_rows(n: int, how: Mapping[str, Any]) -> int:
    return min(n - 1, max(1, math.ceil(n * how["test_fraction"])))


def build_preprocessor(features: Features) -> ColumnTransformer:
    """Numbers imputed and scaled, categories imputed and one-hot encoded, by column index."""
    numeric = [i for i, f in enumerate(features) if f["type"] in NUMERIC_TYPES]
    categorical = [i for i, f in enumerate(features) if f["type"] == "category"]
    parts = []
    if numeric:
        parts.append(
            (
                "numbers",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
    if categorical:
        parts.append(
            (
                "categories",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent", missing_values=None)),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def build_pipeline(
    features: Features, algorithm: str, params: Mapping[str, Any], seed: int
) -> Pipeline:
    """The preprocessor, then the estimator named by its dotted path with its params."""
    estimator_class = resolve_estimator(algorithm)
    chosen = dict(params)
    if "random_state" in estimator_class().get_params() and chosen.get("random_state") is None:
        chosen["random_state"] = seed  # reproducible unless the spec says otherwise
    return Pipeline(
        [("prepare", build_preprocessor(features)), ("model", estimator_class(**chosen))]
    )


def targets(frame: pd.DataFrame, target: str) -> np.ndarray:
    return frame[target].to_numpy()


def fit(pipeline: Pipeline, frame: pd.DataFrame, features: Features, target: str) -> Pipeline:
    """Fit on the frame's feature matrix; returns the fitted pipeline."""
    return pipeline.fit(frame_to_matrix(frame, features), targets(frame, target))


def fit_outlier_detector(frame: pd.DataFrame, features: Features, seed: int) -> Pipeline:
    """An IsolationForest on the same encoding, for outlier scores off the request path."""
    detector = Pipeline(
        [
            ("prepare", build_preprocessor(features)),
            (
                "detect",
                IsolationForest(n_estimators=50, random_state=seed),
            ),  # 50 trees: half the bytes
        ]
    )
    return detector.fit(frame_to_matrix(frame, features))


def positive_label(classes: Sequence[Any], declared: Any) -> Any:
    """The positive class of a binary task: declared, or 1/True when the classes are 0/1."""
    if len(classes) != 2:
        return None
    if declared is not None:
        for label in classes:
            if label == declared or str(label) == str(declared):
                return to_plain(label)
        raise InvalidSpec(
            f"positive_label {declared!r} is not one of the classes {list(classes)}",
            field="positive_label",
        )
    if {to_plain(c) for c in classes} in ({0, 1}, {False, True}):
        return to_plain(classes[1])
    raise InvalidSpec(
        f"name the positive class of {list(classes)} in positive_label", field="positive_label"
    )


def pipeline_params(pipeline: Pipeline) -> dict[str, Any]:
    """Every plain parameter of the pipeline (`model__C`, `prepare__numbers__impute__strategy`...)."""
    from trainers.plain import params_plain

    plain = {k: v for k, v in pipeline.get_params(deep=True).items() if not _holds_estimator(v)}
    return params_plain(plain)


def _holds_estimator(value: Any) -> bool:
    if hasattr(value, "get_params"):
        return True
    return isinstance(value, (list, tuple)) and any(_holds_estimator(v) for v in value)


def input_layout(pipeline: Pipeline, features: Features) -> list[dict[str, Any]]:
    """Which feature each input column holds and, for categories, the levels the encoder knows."""
    known: dict[int, list[Any]] = {}
    prepare = pipeline.named_steps["prepare"]
    if "categories" in prepare.named_transformers_:
        encoder = prepare.named_transformers_["categories"].named_steps["encode"]
        columns = [i for i, f in enumerate(features) if f["type"] == "category"]
        known = {
            i: to_plain(list(levels))
            for i, levels in zip(columns, encoder.categories_, strict=True)
        }
    layout = []
    for i, f in enumerate(features):
        column = {"column": i, "name": f["name"], "type": f["type"]}
        if i in known:  # a personal feature's levels stay inside the artifact, never in events
            column["categories"] = None if f.get("personal") else known[i]
        layout.append(column)
    return layout


OUTLIER_SCORE_QUANTILE = 0.01  # rows scoring below all but 1% of the training rows are outliers
FENCE_IQR_MULTIPLE = 3.0  # a number beyond the training min/max by more than this many IQRs


def detector_summary(
    detector: Pipeline, train: pd.DataFrame, features: Features, digest: str
) -> dict[str, Any]:
    """Where the outlier detector is, its score threshold and the fences, all from the training rows.

    Recorded with the model, so a row is judged by the same cut on any later day.
    """
    scores = detector.score_samples(frame_to_matrix(train, features))
    return {
        "artifact_digest": digest,
        "algorithm": "sklearn.ensemble.IsolationForest",
        "call": "score_samples(X): lower is more anomalous",
        "offset": to_plain(detector.named_steps["detect"].offset_),
        "training_score_quantiles": {
            str(q): to_plain(np.quantile(scores, q)) for q in (0.001, 0.01, 0.05, 0.5)
        },
        "threshold": to_plain(np.quantile(scores, OUTLIER_SCORE_QUANTILE)),
        "threshold_quantile": OUTLIER_SCORE_QUANTILE,
        "fence_iqr_multiple": FENCE_IQR_MULTIPLE,
        "fences": outlier_fences(train, features, FENCE_IQR_MULTIPLE),
    }


def outlier_fences(
    train: pd.DataFrame, features: Features, multiple: float
) -> dict[str, dict[str, float]]:
    """Per plain numeric feature: min - k*IQR and max + k*IQR of the training values.

    Personal features get none: a fence would tell their extremes. A feature whose
    quartiles tie spreads by its range instead, so a fence is never the value itself
    unless the feature never varied.
    """
    fences = {}
    for f in features:
        if f["type"] not in ("number", "integer") or f.get("personal"):
            continue
        values = train[f["name"]].dropna().astype("float64")
        if values.empty:
            continue
        low, high = float(values.min()), float(values.max())
        q25, q75 = values.quantile([0.25, 0.75]).tolist()
        spread = (q75 - q25) or (high - low)
        fences[f["name"]] = {"low": low - multiple * spread, "high": high + multiple * spread}
    return fences


BACKGROUND_ROWS = 100  # SHAP's background: enough for a stable mean, small enough to store


def background_rows(
    train: pd.DataFrame, features: Features, seed: int, size: int = BACKGROUND_ROWS
) -> list[dict[str, Any]]:
    """A seeded sample of training rows, the features only, to explain predictions against.

    Personal features are left missing, so the model's own imputer stands in for them and
    no personal value is stored beside the model.
    """
    chosen = train.sample(n=min(size, len(train)), random_state=seed)
    rows = []
    for _, row in chosen.iterrows():
        rows.append(
            {f["name"]: None if f.get("personal") else to_plain(row[f["name"]]) for f in features}
        )
    return rows
