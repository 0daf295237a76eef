"""All data I/O of the trainers: read a spec's source into a DataFrame."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from trainers import demo_data
from trainers.spec import InvalidSpec

Rows = Iterable[Mapping[str, Any]]
RowsProvider = Callable[[], Rows] | Rows


def load_frame(spec: Mapping[str, Any], rows_provider: RowsProvider | None = None) -> pd.DataFrame:
    """The rows a spec's source names, as a DataFrame (columns not yet checked)."""
    source = spec["source"]
    if source["kind"] == "ledger":
        return load_ledger_rows(rows_provider, spec)
    return LOADERS[source["kind"]](source)


def load_file(source: Mapping[str, Any]) -> pd.DataFrame:
    path = source["path"]
    if not os.path.exists(path):
        raise InvalidSpec(f"no {source['kind']} file at {path}", field="source.path")
    return pd.read_csv(path) if source["kind"] == "csv" else pd.read_parquet(path)


def load_sql(source: Mapping[str, Any]) -> pd.DataFrame:
    import sqlalchemy as sa

    # The spec names the variable (so no password is written into a spec): it is the spec's
    # data, not the ledger's configuration, so it is not a Settings field.
    url = source["url"] or os.environ.get(source["url_env"] or "")
    if not url:
        raise InvalidSpec(
            f"environment variable {source['url_env']} holds no database URL",
            field="source.url_env",
        )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(sa.text(source["query"]), conn)
    finally:
        engine.dispose()


def load_demo(source: Mapping[str, Any]) -> pd.DataFrame:
    return demo_data.generate(
        source["rows"], source["seed"], drift=source["drift"], end=source["end"]
    )


def load_sklearn(source: Mapping[str, Any]) -> pd.DataFrame:
    """A data set scikit-learn ships (no download); class labels by their names."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{source['dataset']}")(as_frame=True)
    frame = bunch.frame.rename(
        columns=lambda c: str(c).strip().replace(" ", "_").replace("(", "").replace(")", "")
    )
    names = getattr(bunch, "target_names", None)
    if names is not None and len(names) and frame["target"].dtype.kind in "iu":
        frame["target"] = [str(names[i]) for i in frame["target"]]
    return frame


def load_ledger_rows(rows_provider: RowsProvider | None, spec: Mapping[str, Any]) -> pd.DataFrame:
    """The ledger's own predictions joined with matured outcomes, as rows passed in.

    Each row is a flat mapping: the spec's feature names, its target (the outcome) and,
    for a time split, its time column. Reading the prediction index is the projections'
    job, so policies pass the rows (or a callable returning them) in.
    """
    if rows_provider is None:
        raise InvalidSpec(
            "a ledger source needs rows of predictions joined with matured outcomes; "
            "run it from `ledger autopilot`, which passes them in",
            field="source.kind",
        )
    rows = rows_provider() if callable(rows_provider) else rows_provider
    return pd.DataFrame.from_records(list(rows))


def describe_source(source: Mapping[str, Any]) -> str:
    """A stable, credential-free description of a source, recorded with each dataset."""
    kind = source["kind"]
    if kind in ("csv", "parquet"):
        return f"{kind}:{source['path']}"
    if kind == "sql":
        return f"sql:{_safe_url(source)}#{' '.join(source['query'].split())}"
    if kind == "demo":
        return f"demo:churn?rows={source['rows']}&seed={source['seed']}&drift={str(source['drift']).lower()}&end={source['end'] or 'default'}"
    if kind == "sklearn":
        return f"sklearn:{source['dataset']}"
    return f"ledger:{source.get('deployment') or ''}"


def redacted(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec as it may be recorded: a SQL URL's password is never stored."""
    source = dict(spec["source"])
    if source["kind"] == "sql" and source.get("url"):
        source["url"] = _safe_url(source)
    return {**spec, "source": source}


def _safe_url(source: Mapping[str, Any]) -> str:
    if source.get("url_env"):
        return f"${source['url_env']}"
    import sqlalchemy as sa

    return sa.engine.make_url(source["url"]).render_as_string(hide_password=True)


LOADERS: dict[str, Callable[[Mapping[str, Any]], pd.DataFrame]] = {
    "csv": load_file,
    "parquet": load_file,
    "sql": load_sql,
    "demo": load_demo,
    "sklearn": load_sklearn,
}
