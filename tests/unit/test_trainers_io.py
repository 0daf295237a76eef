"""Data sources: files, SQL, scikit-learn's shipped sets, rows passed in; no credential recorded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from trainers import demo_data, io
from trainers.spec import InvalidSpec, load_spec


def spec_with(source: dict, **changes) -> dict:
    raw = {
        "name": "io",
        "source": source,
        "target": "churned",
        "time_column": "event_time",
        "features": [
            {"name": "tenure_months", "type": "integer"},
            {"name": "region", "type": "category"},
        ],
        "algorithm": "sklearn.linear_model.LogisticRegression",
    }
    return load_spec({**raw, **changes})


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return demo_data.generate(60, 2)


def test_csv_and_parquet_files_load_the_same_rows(rows, tmp_path: Path):
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet")
    from_csv = io.load_frame(spec_with({"kind": "csv", "path": str(tmp_path / "rows.csv")}))
    from_parquet = io.load_frame(
        spec_with({"kind": "parquet", "path": str(tmp_path / "rows.parquet")})
    )
    assert (
        list(from_csv["customer_id"])
        == list(from_parquet["customer_id"])
        == list(rows["customer_id"])
    )


def test_a_missing_file_names_the_path():
    with pytest.raises(InvalidSpec, match="no csv file") as caught:
        io.load_frame(spec_with({"kind": "csv", "path": "/nonexistent/rows.csv"}))
    assert caught.value.field == "source.path"


def test_a_sql_query_reads_from_a_url_or_an_environment_variable(rows, tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    rows.drop(columns="event_time").to_sql("customers", engine, index=False)
    engine.dispose()
    query = "SELECT * FROM customers WHERE plan = 'basic'"
    assert (
        len(io.load_frame(spec_with({"kind": "sql", "url": url, "query": query})))
        == (rows["plan"] == "basic").sum()
    )
    monkeypatch.setenv("WAREHOUSE_URL", url)
    assert (
        len(io.load_frame(spec_with({"kind": "sql", "url_env": "WAREHOUSE_URL", "query": query})))
        > 0
    )


def test_a_sql_password_is_never_recorded():
    spec = spec_with(
        {
            "kind": "sql",
            "url": "postgresql://reader:s3cret@db.example/warehouse",
            "query": "select 1",
        }
    )
    assert "s3cret" not in io.describe_source(spec["source"])
    assert "s3cret" not in str(io.redacted(spec))


def test_scikit_learns_breast_cancer_set_loads_with_named_labels():
    frame = io.load_frame(spec_with({"kind": "sklearn", "dataset": "breast_cancer"}))
    assert len(frame) == 569 and "mean_concave_points" in frame.columns
    assert set(frame["target"]) == {"malignant", "benign"}


def test_a_ledger_source_takes_rows_or_a_callable_and_refuses_nothing_passed(rows):
    spec = spec_with({"kind": "ledger"})
    records = rows.to_dict("records")
    assert (
        len(io.load_frame(spec, records)) == len(io.load_frame(spec, lambda: iter(records))) == 60
    )
    with pytest.raises(InvalidSpec, match="autopilot"):
        io.load_frame(spec)


def test_demo_sources_describe_their_parameters():
    spec = spec_with(
        {"kind": "demo", "rows": 50, "seed": 3, "drift": True, "end": "2026-03-03T00:00:00Z"}
    )
    assert (
        io.describe_source(spec["source"])
        == "demo:churn?rows=50&seed=3&drift=true&end=2026-03-03T00:00:00.000000Z"
    )
    assert len(io.load_frame(spec)) == 50


def test_the_example_csv_is_the_demo_table_it_says_it_is(tmp_path):
    from pathlib import Path

    from trainers.demo_data import write_csv

    shipped = Path(__file__).resolve().parents[2] / "examples" / "data" / "churn_small.csv"
    write_csv(str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == shipped.read_bytes()
