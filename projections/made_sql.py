"""Prediction.Made rows copied into the prediction index by the database itself.

Three of four events in a busy ledger are predictions; parsing their JSON in SQL and
inserting in the same statement skips the round trip, the decode in Python and the
re-encode for the insert. Read-only on the event table, in position order. The fields
read are those of Prediction.Made at class version 1: ledger.log.states_sql refuses to
build for another version. The day is the historic instant's when the row carries one
(OCCURRED_AT, loaded history), else the recording's.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger import log
from ledger.domain.predictions import OCCURRED_AT, Prediction
from projections.cubes import DAY_US

COLUMNS = (
    "prediction_id, position, recorded_at, day, deployment, deployment_version, served_model, leader, "
    "request_id, features, outputs, flags, flagged, actor, subject_ref, "
    "sealed_fields"
)

# Each state is parsed once, in a lateral subquery that OFFSET 0 keeps from being folded
# into the fields that read it; a MATERIALIZED CTE parsed it once too, but copied every
# parsed state into a tuplestore that spilled to temporary files (18 MB a page of 25,000).
POSTGRES = f"""
INSERT INTO {{table}} ({COLUMNS})
SELECT e.originator_id::text, e.id, e.recorded_at,
       COALESCE((j->'scoring'->>'{OCCURRED_AT}')::bigint, e.recorded_at) / {DAY_US}, j->>'deployment',
       (j->>'deployment_version')::int, j->>'served_model', j->>'leader', j->>'request_id',
       j->'features', j->'outputs', j->'flags', jsonb_array_length(j->'flags') > 0, j->>'actor',
       j->'sealed'->>'subject_ref', j->'sealed'->'fields'
FROM ({{states}}) e CROSS JOIN LATERAL (SELECT e.s AS j OFFSET 0) parsed
"""

SQLITE = f"""
INSERT INTO {{table}} ({COLUMNS})
SELECT {log.SQLITE_UUID_TEXT}, id, recorded_at,
       CAST(COALESCE(json_extract(s, '$.scoring.{OCCURRED_AT}'), recorded_at) AS INTEGER) / {DAY_US},
       json_extract(s, '$.deployment'),
       json_extract(s, '$.deployment_version'), json_extract(s, '$.served_model'), json_extract(s, '$.leader'),
       json_extract(s, '$.request_id'), json_extract(s, '$.features'), json_extract(s, '$.outputs'),
       json_extract(s, '$.flags'), json_array_length(s, '$.flags') > 0, json_extract(s, '$.actor'),
       json_extract(s, '$.sealed.subject_ref'), json_extract(s, '$.sealed.fields')
FROM ({{states}})
"""


def copy_predictions(conn: sa.Connection, table: sa.Table, after: int, upto: int) -> None:
    """Insert the index row of every prediction made in positions (after, upto]."""
    states, params = log.states_sql(conn, Prediction.Made)
    sql = POSTGRES if conn.dialect.name == "postgresql" else SQLITE
    conn.execute(
        sa.text(sql.format(table=table.name, states=states)),
        {**params, "after": after, "upto": upto},
    )
