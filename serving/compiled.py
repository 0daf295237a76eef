"""A compiled scorer: a fitted pipeline's arithmetic in plain numpy, without sklearn's per-call checks.

Single-row scoring through a Pipeline is ~95% validation and dispatch (timed on 30 features: the
arithmetic is 7-14 µs of a 0.35-2 ms call). `compile_model` accepts only pipelines made
of known fitted steps and replays their transform/predict code paths with the same numpy
operations in the same order (same BLAS call, same sequential tree sums), so values and
probabilities equal the pipeline's; anything else returns None and scores through the
pipeline. A prediction records which scorer made it; reproduce uses the same one.

A single row has a scalar form of the same scorer (`CompiledModel.one`): numpy's fixed cost
per call is most of a one-row score, so each step replays its arithmetic on Python floats,
which are the same IEEE doubles with the same correctly rounded operations, and the final
step still runs on a (1, n) array where a BLAS call decides the rounding (tests hold the
two forms bit-identical on random rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.extmath import softmax

PIPELINE, COMPILED = "pipeline", "compiled-v1"
Step = Callable[[np.ndarray], np.ndarray]
OneStep = Callable[[list[Any]], list[Any]]  # one row's values -> the step's output values
# one prepared row -> (its value, its probabilities or None), as `.tolist()` gives them
OneFinal = Callable[[list[float]], tuple[Any, list[float] | None]]
NOT_FINITE = "Input contains NaN or infinity (a missing value no step imputes)"
FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
TREES = (DecisionTreeClassifier, DecisionTreeRegressor)


class Unsupported(Exception):
    """A step the compiler does not know; the model scores through its pipeline."""


@dataclass
class CompiledModel:
    """prepare: object matrix -> float matrix; final: float matrix -> (values, probabilities or None)."""

    prepare: Step
    final: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    allow_nan: bool = False  # trees route NaN themselves; linear models refuse it
    prepare_one: OneStep | None = None  # the scalar forms, None when a step has none
    final_one: OneFinal | None = None

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        prepared = self.prepare(matrix)
        finite = (
            np.isfinite(prepared) | np.isnan(prepared) if self.allow_nan else np.isfinite(prepared)
        )
        if not finite.all():  # sklearn's check_array refuses these too
            raise ValueError(NOT_FINITE)
        return self.final(prepared)

    @property
    def scores_one(self) -> bool:
        return self.prepare_one is not None and self.final_one is not None

    def one(self, values: list[Any]) -> tuple[Any, list[float] | None]:
        """score() of the one-row matrix holding `values`, as `.tolist()[0]` of each output."""
        assert self.prepare_one is not None and self.final_one is not None
        prepared = self.prepare_one(values)
        for x in prepared:
            if not math.isfinite(x) and not (self.allow_nan and x != x):
                raise ValueError(NOT_FINITE)
        return self.final_one(prepared)


def compile_model(estimator: Any) -> CompiledModel | None:
    """The compiled form of a fitted estimator, or None when any step is unknown."""
    try:
        if isinstance(estimator, Pipeline):
            steps = [s for _, s in estimator.steps if s not in (None, "passthrough")]
            transforms, final = steps[:-1], steps[-1]
        else:
            transforms, final = [], estimator
        prepare = _chain([_transform(s) for s in transforms])
        compiled = CompiledModel(prepare, _final(final), _allows_nan(final))
    except Unsupported:
        return None
    try:
        compiled.prepare_one = _chain_one([_transform_one(s) for s in transforms])
        compiled.final_one = _final_one(final, compiled.final)
    except Unsupported:
        compiled.prepare_one = compiled.final_one = None
    return compiled


def _allows_nan(final: Any) -> bool:
    return type(final) in TREES or type(final) in FORESTS


def _chain(steps: list[Step]) -> Step:
    def run(X: np.ndarray) -> np.ndarray:
        for step in steps:
            X = step(X)
        return _as_float(X)

    return run


def _as_float(X: np.ndarray) -> np.ndarray:
    return X if X.dtype == np.float64 else np.asarray(X, dtype=np.float64)


def _transform(step: Any) -> Step:
    """One fitted transformer as a function; Unsupported for anything not replayed exactly."""
    if _output_configured(step):
        raise Unsupported("set_output")
    kind = type(step)
    if kind is Pipeline:
        return _chain([_transform(s) for _, s in step.steps if s not in (None, "passthrough")])
    if kind is ColumnTransformer:
        return _columns(step)
    if kind is SimpleImputer:
        return _imputer(step)
    if kind is StandardScaler:
        return _scaler(step)
    if kind is OneHotEncoder:
        return _one_hot(step)
    raise Unsupported(kind.__name__)


def _output_configured(step: Any) -> bool:
    config = getattr(step, "_sklearn_output_config", {}) or {}
    return config.get("transform") not in (None, "default")


def _columns(ct: ColumnTransformer) -> Step:
    """hstack of each part's output on its integer columns, in transformers_ order (remainder dropped)."""
    if getattr(ct, "sparse_output_", False):
        raise Unsupported("sparse ColumnTransformer")
    parts = []
    for _, transformer, columns in ct.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise Unsupported(f"ColumnTransformer {transformer}")
        index = np.asarray(columns)
        if index.dtype.kind not in "iu" or index.size == 0:
            raise Unsupported("ColumnTransformer columns must be integer positions")
        parts.append((_transform(transformer), index))
    if not parts:
        raise Unsupported("empty ColumnTransformer")

    def run(X: np.ndarray) -> np.ndarray:
        return np.hstack([_as_float(step(X[:, index])) for step, index in parts])

    return run


def _imputer(imputer: SimpleImputer) -> Step:
    if imputer.add_indicator:
        raise Unsupported("imputer indicator")
    statistics = imputer.statistics_
    if imputer.missing_values is None:
        if statistics.dtype != object or any(s is None for s in statistics):
            raise Unsupported("object imputer")
        return lambda X: _fill_none(X, statistics)
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise Unsupported("imputer missing_values")
    if statistics.dtype.kind != "f" or np.isnan(statistics).any():
        raise Unsupported("imputer drops empty columns")  # sklearn would drop the column
    return lambda X: _fill_nan(X, statistics)


def _fill_none(X: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    out = X.copy()
    for j in range(out.shape[1]):
        column = out[:, j]
        # numpy's stubs refuse None, which is how an object column holds a missing value.
        column[np.equal(column, None)] = statistics[j]  # type: ignore[call-overload]
    return out


def _fill_nan(X: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    out = np.array(X, dtype=np.float64)  # a copy: sklearn's check_array of an object matrix
    mask = np.isnan(out)
    if mask.any():
        rows, cols = np.nonzero(mask)
        out[rows, cols] = statistics[cols]
    return out


def _scaler(scaler: StandardScaler) -> Step:
    mean, scale = (
        scaler.mean_ if scaler.with_mean else None,
        scaler.scale_ if scaler.with_std else None,
    )

    def run(X: np.ndarray) -> np.ndarray:
        out = np.array(X, dtype=np.float64)
        if mean is not None:
            out -= mean
        if scale is not None:
            out /= scale
        return out

    return run


def _one_hot(encoder: OneHotEncoder) -> Step:
    plain = encoder.drop_idx_ is None and not getattr(encoder, "_infrequent_enabled", False)
    if (
        not plain
        or encoder.handle_unknown != "ignore"
        or encoder.sparse_output
        or encoder.dtype is not np.float64
    ):
        raise Unsupported("OneHotEncoder options")
    if any(
        levels.dtype != object or not all(isinstance(v, str) for v in levels)
        for levels in encoder.categories_
    ):
        raise Unsupported("non-text categories")
    lookups = [
        {level: i for i, level in enumerate(levels.tolist())} for levels in encoder.categories_
    ]
    offsets = np.cumsum([0] + [len(lookup) for lookup in lookups])

    def run(X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], int(offsets[-1])), dtype=np.float64)
        for j, lookup in enumerate(lookups):
            for r, value in enumerate(X[:, j].tolist()):
                at = (
                    lookup.get(value) if isinstance(value, str) else None
                )  # unknown: a row of zeros
                if at is not None:
                    out[r, offsets[j] + at] = 1.0
        return out

    return run


# -- one row: the same steps on a list of Python values ---------------------------------------
def _chain_one(steps: list[OneStep]) -> OneStep:
    def run(x: list[Any]) -> list[Any]:
        for step in steps:
            x = step(x)
        return [v if type(v) is float else _float(v) for v in x]  # _as_float

    return run


def _float(value: Any) -> float:
    """One value as np.asarray(..., dtype=np.float64) converts it (None is NaN there)."""
    return math.nan if value is None else float(value)


def _transform_one(step: Any) -> OneStep:
    """`_transform(step)` on one row; Unsupported where it has no scalar form."""
    kind = type(step)
    if kind is Pipeline:
        return _chain_one(
            [_transform_one(s) for _, s in step.steps if s not in (None, "passthrough")]
        )
    if kind is ColumnTransformer:
        return _columns_one(step)
    if kind is SimpleImputer:
        return _imputer_one(step)
    if kind is StandardScaler:
        return _scaler_one(step)
    if kind is OneHotEncoder:
        return _one_hot_one(step)
    raise Unsupported(kind.__name__)


def _columns_one(ct: ColumnTransformer) -> OneStep:
    parts = [
        (_transform_one(transformer), [int(i) for i in columns])
        for _, transformer, columns in ct.transformers_
        if not isinstance(transformer, str)  # "drop": _columns refuses every other string
    ]

    def run(x: list[Any]) -> list[Any]:
        out: list[Any] = []
        for step, index in parts:
            out += [v if type(v) is float else _float(v) for v in step([x[i] for i in index])]
        return out

    return run


def _imputer_one(imputer: SimpleImputer) -> OneStep:
    statistics = imputer.statistics_.tolist()
    if imputer.missing_values is None:
        return lambda x: [statistics[j] if v is None else v for j, v in enumerate(x)]

    def run(x: list[Any]) -> list[Any]:
        out = [_float(v) for v in x]
        return [statistics[j] if v != v else v for j, v in enumerate(out)]

    return run


def _scaler_one(scaler: StandardScaler) -> OneStep:
    mean = scaler.mean_.tolist() if scaler.with_mean else None
    scale = scaler.scale_.tolist() if scaler.with_std else None

    def run(x: list[Any]) -> list[Any]:
        out = [_float(v) for v in x]
        if mean is not None:
            out = [v - m for v, m in zip(out, mean, strict=True)]
        if scale is not None:
            out = [v / s for v, s in zip(out, scale, strict=True)]
        return out

    return run


def _one_hot_one(encoder: OneHotEncoder) -> OneStep:
    lookups = [
        {level: i for i, level in enumerate(levels.tolist())} for levels in encoder.categories_
    ]
    offsets = np.cumsum([0] + [len(lookup) for lookup in lookups]).tolist()

    def run(x: list[Any]) -> list[Any]:
        out = [0.0] * offsets[-1]
        for j, lookup in enumerate(lookups):
            value = x[j]
            at = lookup.get(value) if isinstance(value, str) else None
            if at is not None:
                out[offsets[j] + at] = 1.0
        return out

    return run


def _final_one(
    estimator: Any, final: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
) -> OneFinal:
    """Trees walk in Python; a linear model's product stays numpy's, on a (1, n) array."""
    kind = type(estimator)
    if kind in TREES or kind in FORESTS:
        from serving.compiled_trees import tree_scorer_one

        return tree_scorer_one(estimator)
    if kind is LogisticRegression and estimator.coef_.shape[0] == 1:
        return _binary_logistic_one(estimator)

    def run(x: list[float]) -> tuple[Any, list[float] | None]:
        values, probabilities = final(np.array([x], dtype=np.float64))
        return values.tolist()[0], None if probabilities is None else probabilities.tolist()[0]

    return run


def _binary_logistic_one(model: LogisticRegression) -> OneFinal:
    """`_logistic`'s two-class branch on one row: the product and expit stay numpy's."""
    coef_T, intercept, classes = model.coef_.T, model.intercept_, model.classes_.tolist()

    def run(x: list[float]) -> tuple[Any, list[float]]:
        score = (np.array([x], dtype=np.float64) @ coef_T + intercept).item()
        prob = float(expit(score))
        return classes[1 if score > 0 else 0], [1 - prob, prob]

    return run


def _final(estimator: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    kind = type(estimator)
    if kind is LogisticRegression:
        return _logistic(estimator)
    if kind in (LinearRegression, Ridge):
        return _linear(estimator)
    if kind in TREES or kind in FORESTS:
        from serving.compiled_trees import tree_scorer

        return tree_scorer(estimator)
    raise Unsupported(kind.__name__)


def _logistic(
    model: LogisticRegression,
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """LinearClassifierMixin.decision_function / predict and LogisticRegression.predict_proba."""
    if (
        getattr(model, "multi_class", "deprecated") not in ("deprecated", "auto", "multinomial")
        and len(model.classes_) > 2
    ):
        raise Unsupported("one-vs-rest logistic regression")
    coef_T, intercept, classes = model.coef_.T, model.intercept_, model.classes_

    def run(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = X @ coef_T + intercept
        if scores.shape[1] == 1:
            scores = scores.reshape(-1)
            values = classes.take((scores > 0).astype(np.intp), axis=0)
            prob = expit(scores, out=scores)
            return values, np.stack([1 - prob, prob], axis=1)
        values = classes.take(np.argmax(scores, axis=1), axis=0)
        return values, softmax(scores, copy=False)

    return run


def _linear(model: Any) -> Callable[[np.ndarray], tuple[np.ndarray, None]]:
    """LinearModel._decision_function."""
    coef = model.coef_ if model.coef_.ndim == 1 else model.coef_.T
    intercept = model.intercept_
    return lambda X: (X @ coef + intercept, None)
