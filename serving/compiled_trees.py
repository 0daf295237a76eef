"""Trees and forests from their `tree_` arrays: every tree walked at once, summed in tree order.

Replays sklearn's code path: X cast to float32 (`_validate_X_predict`), `x <= threshold`
at each split (NaN goes where `missing_go_to_left` says), the leaf's `value` row; a forest adds its trees' outputs one after another
(`_accumulate_prediction` with n_jobs=None) and divides by their number. The sum is a
cumulative sum along the tree axis, which is that same sequential addition.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from serving.compiled import FORESTS, Unsupported


def tree_scorer(estimator: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """(values, probabilities) of a fitted tree or forest with one output."""
    forest = isinstance(estimator, FORESTS)
    if forest and estimator.n_jobs not in (None, 1):
        raise Unsupported("parallel forests sum their trees in any order")
    if estimator.n_outputs_ != 1:
        raise Unsupported("multi-output trees")
    trees = [t.tree_ for t in estimator.estimators_] if forest else [estimator.tree_]
    walk = _walker(trees)
    classifier = is_classifier(estimator)
    width = int(estimator.n_classes_) if classifier else 1
    leaves = np.concatenate([t.value[:, 0, :width] for t in trees])  # (all nodes, classes)
    classes = estimator.classes_ if classifier else None

    def run(X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        per_tree = leaves[walk(X)]  # (rows, trees, classes)
        out = per_tree[:, 0, :].copy() if not forest else np.cumsum(per_tree, axis=1)[:, -1, :]
        if forest:
            out /= len(trees)
        if classes is None:
            return out[:, 0], None
        return classes.take(np.argmax(out, axis=1), axis=0), out

    return run


def tree_scorer_one(estimator: Any) -> Callable[[list[float]], tuple[Any, list[float] | None]]:
    """`tree_scorer(estimator)` on one prepared row, in Python: (value, probabilities or None)."""
    forest = isinstance(estimator, FORESTS)
    trees = [t.tree_ for t in estimator.estimators_] if forest else [estimator.tree_]
    classifier = is_classifier(estimator)
    width = int(estimator.n_classes_) if classifier else 1
    # Every tree's nodes in one list, a node as (feature, threshold, NaN goes left, left, right)
    # with children as indices into that list; a leaf's left is -1 and its feature its value row.
    nodes: list[tuple[Any, float, bool, int, int]] = []
    roots = []
    for t in trees:
        offset = len(nodes)
        roots.append(offset)
        missing = np.asarray(t.missing_go_to_left, dtype=bool).tolist()
        for feature, threshold, nan_left, left, right, value in zip(
            t.feature.tolist(),
            t.threshold.tolist(),
            missing,
            t.children_left.tolist(),
            t.children_right.tolist(),
            t.value[:, 0, :width].tolist(),
            strict=True,
        ):
            if left == -1:
                nodes.append((value, 0.0, False, -1, -1))
            else:
                nodes.append((feature, threshold, nan_left, left + offset, right + offset))
    count = len(trees)
    classes = estimator.classes_.tolist() if classifier else None

    def run(x: list[float]) -> tuple[Any, list[float] | None]:
        x32 = np.asarray(x, dtype=np.float32).tolist()  # as _validate_X_predict casts
        leaves = []
        for root in roots:
            feature, threshold, nan_left, left, right = nodes[root]
            while left != -1:
                v = x32[feature]
                node = left if (nan_left if v != v else v <= threshold) else right
                feature, threshold, nan_left, left, right = nodes[node]
            leaves.append(feature)
        # the cumulative sum over trees: one addition after another, in tree order
        out = [reduce(add, column) for column in zip(*leaves, strict=True)]
        if forest:
            out = [a / count for a in out]
        if classes is None:
            return out[0], None
        return classes[out.index(max(out))], out  # argmax: the first of equal maxima

    return run


def _walker(trees: list[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A function from rows to each tree's leaf (as an index into the concatenated nodes)."""
    offsets = np.cumsum([0] + [t.node_count for t in trees])[:-1]
    left = np.concatenate(
        [_children(t.children_left, o) for t, o in zip(trees, offsets, strict=True)]
    )
    right = np.concatenate(
        [_children(t.children_right, o) for t, o in zip(trees, offsets, strict=True)]
    )
    leaf = np.concatenate([t.children_left == -1 for t in trees])
    left[leaf] = right[leaf] = np.flatnonzero(leaf)  # a leaf points at itself: the walk stays there
    feature = np.concatenate([np.where(t.children_left == -1, 0, t.feature) for t in trees]).astype(
        np.intp
    )
    threshold = np.concatenate([t.threshold for t in trees])
    missing_left = np.concatenate([np.asarray(t.missing_go_to_left, dtype=bool) for t in trees])
    depth = max(t.max_depth for t in trees)

    def walk(X: np.ndarray) -> np.ndarray:
        X32 = np.asarray(X, dtype=np.float32)
        nodes = np.broadcast_to(offsets, (X32.shape[0], len(trees))).copy()
        rows = np.arange(X32.shape[0])[:, None]
        for _ in range(depth):
            x = X32[rows, feature[nodes]]
            go_left = np.where(
                np.isnan(x), missing_left[nodes], x <= threshold[nodes]
            )  # as apply_dense
            nodes = np.where(go_left, left[nodes], right[nodes])
        return nodes

    return walk


def _children(children: np.ndarray, offset: int) -> np.ndarray:
    return np.where(children == -1, -1, children + offset).astype(np.intp)
