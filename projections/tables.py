"""Table definitions of the prediction projection (kept apart to keep modules short)."""

from __future__ import annotations

import sqlalchemy as sa

from projections.base import BIGINT, JSON
from projections.cubes import LEVELS

CUBE_KEY = (
    "deployment",
    "model_id",
    "day",
    "epoch",
    "slice_feature",
    "slice_value",
    "actual",
    "predicted",
)
SUMS = ("n", "sum_err", "sum_abs", "sum_sq")


def prediction_tables(metadata: sa.MetaData, s: str) -> dict[str, sa.Table]:
    """pj_predictions, pj_outcomes, pj_cubes (coarse and fine) and two private lookups, with suffix `s`."""
    predictions = sa.Table(
        f"pj_predictions{s}",
        metadata,
        sa.Column("prediction_id", sa.String(36), primary_key=True),
        sa.Column("position", BIGINT, nullable=False),
        sa.Column("recorded_at", BIGINT, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("deployment_version", sa.Integer, nullable=False),
        sa.Column("served_model", sa.String(36), nullable=False),
        sa.Column("leader", sa.String(36)),
        sa.Column("request_id", sa.String(300), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("outputs", JSON, nullable=False),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("subject_ref", sa.String(128)),
        sa.Column(
            "sealed_fields", JSON
        ),  # names of the sealed (personal) fields; never their values
        sa.Column("erased_at", BIGINT),  # position of the Subject.Forgotten that erased this row
        sa.Index(f"ix_pj_predictions_position{s}", "position", unique=True),
        sa.Index(f"ix_pj_predictions_deployment{s}", "deployment", "position"),
        sa.Index(f"ix_pj_predictions_served{s}", "served_model", "position"),
        sa.Index(f"ix_pj_predictions_recorded{s}", "recorded_at"),
        # a forget looks rows up by subject, also mid-rebuild; rows without a subject cost the index nothing
        sa.Index(
            f"ix_pj_predictions_subject{s}",
            "subject_ref",
            info={"lookup": True},
            postgresql_where=sa.text("subject_ref IS NOT NULL"),
            sqlite_where=sa.text("subject_ref IS NOT NULL"),
        ),
        sa.Index(
            f"ix_pj_predictions_features{s}",
            "features",
            postgresql_using="gin",
            postgresql_ops={"features": "jsonb_path_ops"},
        ),
    )
    outcomes = sa.Table(
        f"pj_outcomes{s}",
        metadata,
        sa.Column("position", BIGINT, primary_key=True),
        sa.Column("prediction_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", BIGINT, nullable=False),
        sa.Column("epoch", BIGINT, nullable=False),  # cubes.EpochClock: the cells it was counted in
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column(
            "day", sa.Integer, nullable=False
        ),  # the prediction's day and values: the as-of tail
        sa.Column(
            "predicted", JSON, nullable=False
        ),  # reads this row alone, not the prediction's too
        sa.Column("actual", JSON),
        sa.Column("corrected", sa.Boolean, nullable=False),
        sa.Column("previous", JSON),
        sa.Column(
            "slices", JSON, nullable=False
        ),  # the slice values this outcome was counted under
        sa.Column("previous_slices", JSON),  # those of the outcome it corrected
        sa.Column("observed_at", sa.String(64)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Index(
            f"ix_pj_outcomes_prediction{s}", "prediction_id", "position", info={"lookup": True}
        ),
        sa.Index(f"ix_pj_outcomes_recorded{s}", "deployment", "recorded_at"),
        sa.Index(f"ix_pj_outcomes_epoch{s}", "epoch", "deployment", "position"),  # the as-of tail
    )
    cubes = {name: _cube_table(metadata, f"pj_{name}{s}") for name, _ in LEVELS}  # cubes.LEVELS
    deployments = sa.Table(
        f"pj_perf_deployments{s}",
        metadata,
        sa.Column("deployment_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("positive_label", JSON),
        sa.Column("sliced", JSON, nullable=False),
        sa.Column("bins", JSON, nullable=False),
    )
    profiles = sa.Table(
        f"pj_perf_profiles{s}",
        metadata,
        sa.Column("model_id", sa.String(36), primary_key=True),
        sa.Column("edges", JSON, nullable=False),
    )
    return {
        "predictions": predictions,
        "outcomes": outcomes,
        **cubes,
        "deployments": deployments,
        "profiles": profiles,
    }


def _cube_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("epoch", BIGINT, nullable=False),
        sa.Column("slice_feature", sa.String(200), nullable=False),
        sa.Column("slice_value", sa.String(200), nullable=False),
        sa.Column("actual", sa.String(200), nullable=False),
        sa.Column("predicted", sa.String(200), nullable=False),
        sa.Column("n", BIGINT, nullable=False),
        sa.Column("sum_err", sa.Float, nullable=False),
        sa.Column("sum_abs", sa.Float, nullable=False),
        sa.Column("sum_sq", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*CUBE_KEY, name=f"pk_{name}"),
        # day last: a window's day bounds are checked on the index entry, before the row is read
        sa.Index(f"ix_{name}_slice", "deployment", "slice_feature", "epoch", "day"),
    )
