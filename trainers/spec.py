"""Training specs: validated with marshmallow into one normalised, JSON-safe dict."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from ledger.errors import InvalidCommand
from ledger.timeline import parse_instant
from trainers.plain import instant

FEATURE_TYPES = ("number", "integer", "category", "boolean")
TASKS = ("classification", "regression")
METRICS = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("mae", "rmse", "r2"),
}
SKLEARN_DATASETS = ("breast_cancer", "iris", "wine", "diabetes")  # shipped with scikit-learn


class InvalidSpec(InvalidCommand):
    """A training spec that cannot be used; `field` names the first bad field."""

    code = "invalid_spec"


class Instant(fields.Field):
    """An ISO-8601 instant with an offset, kept as a normalised UTC string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = value.isoformat() if isinstance(value, datetime) else str(value)  # YAML dates
        try:
            parsed = parse_instant(text, attr or "instant")
        except InvalidCommand as error:
            raise ValidationError(error.detail) from None
        return instant(parsed)  # type: ignore[return-value]


class FeatureSchema(Schema):
    name = fields.String(required=True, validate=Length(min=1))
    type = fields.String(required=True, validate=OneOf(FEATURE_TYPES))
    nullable = fields.Boolean(load_default=False)
    personal = fields.Boolean(load_default=False)


class FileSource(Schema):
    kind = fields.String(required=True)
    path = fields.String(required=True, validate=Length(min=1))


class SqlSource(Schema):
    kind = fields.String(required=True)
    query = fields.String(required=True, validate=Length(min=1))
    url = fields.String(load_default=None)
    url_env = fields.String(load_default=None, metadata={"description": "env var holding the URL"})

    @validates_schema
    def check_one_url(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("url") is None) == (data.get("url_env") is None):
            raise ValidationError("give exactly one of url or url_env", field_name="url")


class DemoSource(Schema):
    kind = fields.String(required=True)
    rows = fields.Integer(load_default=2000, validate=Range(min=20, max=2_000_000))
    seed = fields.Integer(load_default=0)
    drift = fields.Boolean(load_default=False)
    end = Instant(load_default=None)


class SklearnSource(Schema):
    kind = fields.String(required=True)
    dataset = fields.String(required=True, validate=OneOf(SKLEARN_DATASETS))


class LedgerSource(Schema):
    kind = fields.String(required=True)
    deployment = fields.String(load_default=None)


SOURCES: dict[str, type[Schema]] = {
    "csv": FileSource,
    "parquet": FileSource,
    "sql": SqlSource,
    "demo": DemoSource,
    "sklearn": SklearnSource,
    "ledger": LedgerSource,
}


class SourceField(fields.Field):
    """A data source: one schema per `kind`."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError("must be a mapping with a kind")
        kind = value.get("kind")
        if kind not in SOURCES:
            raise ValidationError({"kind": [f"must be one of {', '.join(SOURCES)}"]})
        return SOURCES[kind]().load(value)


class SplitSchema(Schema):
    kind = fields.String(load_default="random", validate=OneOf(("time", "random")))
    column = fields.String(load_default=None)
    cutoff = Instant(load_default=None)
    test_fraction = fields.Float(
        load_default=0.25, validate=Range(min=0, max=1, min_inclusive=False, max_inclusive=False)
    )
    seed = fields.Integer(load_default=0)
    stratify = fields.Boolean(load_default=False)

    @validates_schema
    def check_cutoff(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") == "random" and data.get("cutoff") is not None:
            raise ValidationError("a cutoff needs kind: time", field_name="cutoff")


def default_split() -> dict[str, Any]:
    return {
        "kind": "random",
        "column": None,
        "cutoff": None,
        "test_fraction": 0.25,
        "seed": 0,
        "stratify": False,
    }


class SpecSchema(Schema):
    name = fields.String(required=True, validate=Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"))
    description = fields.String(load_default="")
    deployment = fields.String(load_default=None)
    source = SourceField(required=True)
    target = fields.String(required=True, validate=Length(min=1))
    task = fields.String(load_default=None, validate=OneOf(TASKS))
    positive_label = fields.Raw(load_default=None, allow_none=True)
    features = fields.List(fields.Nested(FeatureSchema), required=True, validate=Length(min=1))
    subject = fields.String(
        load_default=None, metadata={"description": "the personal subject id column"}
    )
    time_column = fields.String(load_default=None)
    algorithm = fields.String(required=True)
    params = fields.Dict(keys=fields.String(), load_default=dict)
    seed = fields.Integer(load_default=0)
    split = fields.Nested(SplitSchema, load_default=default_split)
    metrics = fields.List(fields.String(), load_default=None)

    @validates_schema
    def check_columns(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [f["name"] for f in data.get("features", [])]
        if len(set(names)) != len(names):
            raise ValidationError("feature names must be unique", field_name="features")
        if data.get("target") in names:
            raise ValidationError("the target cannot also be a feature", field_name="target")
        if data.get("subject") is not None and data["subject"] in names:
            raise ValidationError(
                "the subject id is personal and never a model input", field_name="subject"
            )
        split = data.get("split") or {}
        if split.get("kind") == "time" and not (split.get("column") or data.get("time_column")):
            raise ValidationError(
                "a time split needs split.column or time_column", field_name="split"
            )

    @validates_schema
    def check_algorithm(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "algorithm" not in data:
            return
        try:
            estimator_class = resolve_estimator(data["algorithm"])
            task = estimator_task(estimator_class)
        except ValueError as error:
            raise ValidationError(str(error), field_name="algorithm") from None
        if data.get("task") not in (None, task):
            raise ValidationError(f"{data['algorithm']} is a {task} estimator", field_name="task")
        known = set(estimator_class().get_params(deep=False))
        unknown = sorted(set(data.get("params") or {}) - known)
        if unknown:
            raise ValidationError(
                f"{estimator_class.__name__} has no parameter {', '.join(unknown)}; it takes {', '.join(sorted(known))}",
                field_name="params",
            )
        bad = sorted(set(data.get("metrics") or []) - set(METRICS[task]))
        if bad:
            raise ValidationError(
                f"{', '.join(bad)} is not a {task} metric; use {', '.join(METRICS[task])}",
                field_name="metrics",
            )

    @post_load
    def normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["task"] = estimator_task(resolve_estimator(data["algorithm"]))
        data["metrics"] = data["metrics"] or list(METRICS[data["task"]])
        split = data["split"]
        if split["kind"] == "time":
            split["column"] = split["column"] or data["time_column"]
            data["time_column"] = data["time_column"] or split["column"]
        return data


def resolve_estimator(path: str) -> type:
    """The scikit-learn estimator class a public dotted path names; nothing outside sklearn."""
    parts = path.split(".")
    if parts[0] != "sklearn" or len(parts) < 3:
        raise ValueError(
            f"{path!r} is not a scikit-learn estimator path, e.g. sklearn.linear_model.LogisticRegression"
        )
    if any(not p.isidentifier() or p.startswith("_") for p in parts):
        raise ValueError(f"{path!r} must be a public scikit-learn path (no private modules)")
    try:
        module = importlib.import_module(".".join(parts[:-1]))
    except ImportError:
        raise ValueError(f"scikit-learn has no module {'.'.join(parts[:-1])!r}") from None
    found = getattr(module, parts[-1], None)
    from sklearn.base import BaseEstimator

    if not (isinstance(found, type) and issubclass(found, BaseEstimator)):
        raise ValueError(f"{path!r} is not a scikit-learn estimator class")
    if not found.__module__.startswith("sklearn."):
        raise ValueError(f"{path!r} resolves outside scikit-learn ({found.__module__})")
    return found


def estimator_task(estimator_class: type) -> str:
    """`classification` or `regression`; refuses estimators that need constructor arguments."""
    from sklearn.base import is_classifier, is_regressor

    try:
        estimator = estimator_class()
    except TypeError:
        raise ValueError(
            f"{estimator_class.__name__} needs constructor arguments a spec cannot give"
        ) from None
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise ValueError(f"{estimator_class.__name__} is neither a classifier nor a regressor")


def load_spec(raw: Mapping[str, Any] | str | Path, base_dir: Path | None = None) -> dict[str, Any]:
    """Validate a spec (a dict, or a YAML file's path) into its normalised form."""
    if isinstance(raw, (str, Path)):
        path = Path(raw)
        raw = read_yaml(path)
        base_dir = base_dir or path.resolve().parent
    try:
        spec = SpecSchema().load(dict(raw))
    except ValidationError as error:
        raise invalid_spec(error.messages) from None
    source = spec["source"]
    if source["kind"] in ("csv", "parquet") and base_dir is not None:
        source["path"] = str((base_dir / source["path"]).resolve())  # rebuildable from any cwd
    return spec


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InvalidSpec(f"no spec file at {path}", field="spec") from None
    except yaml.YAMLError as error:
        raise InvalidSpec(f"{path} is not valid YAML: {error}", field="spec") from None
    if not isinstance(loaded, dict):
        raise InvalidSpec(f"{path} must hold a mapping (name, source, target, ...)", field="spec")
    return loaded


def invalid_spec(messages: Any) -> InvalidSpec:
    flat = flatten_messages(messages)
    listed = "; ".join(f"{field}: {text}" for field, text in flat.items())
    return InvalidSpec(
        f"the training spec is invalid: {listed}", field=next(iter(flat), None), errors=flat
    )


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as {'source.path': 'Missing data ...'}."""
    if isinstance(messages, Mapping):
        flat: dict[str, str] = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            flat.update(flatten_messages(value, name))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "spec": " ".join(messages)}
    return {prefix or "spec": str(messages)}
