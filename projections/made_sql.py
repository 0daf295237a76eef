"""Prediction.Made rows copied into the prediction index by the database itself.

Three of four events in a busy ledger are predictions; parsing their JSON in SQL and
inserting in the same statement skips the round trip, the decode in Python and the
re-encode for the insert. Read-only on the event table, in position order.
"""

from __future__ import annotations

import sqlalchemy as sa

from projections import events as ev
from projections.cubes import DAY_US

MADE = ev.PREDICTION + "Made"
COLUMNS = (
    "prediction_id, position, recorded_at, day, deployment, deployment_version, served_model, leader, "
    "request_id, features, outputs, flags, flagged, actor, subject_ref, "
    "sealed_fields"
)

POSTGRES = f"""
WITH e AS MATERIALIZED (  -- parse each state once, not once per field
    SELECT id, originator_id, recorded_at, convert_from(state, 'UTF8')::jsonb AS s
    FROM {ev.events_table.name} WHERE id > :after AND id <= :upto AND topic = :topic)
INSERT INTO {{table}} ({COLUMNS})
SELECT e.originator_id::text, e.id, e.recorded_at, e.recorded_at / {DAY_US}, s->>'deployment',
       (s->>'deployment_version')::int, s->>'served_model', s->>'leader', s->>'request_id',
       s->'features', s->'outputs', s->'flags', jsonb_array_length(s->'flags') > 0, s->>'actor',
       s->'sealed'->>'subject_ref', s->'sealed'->'fields'
FROM e
"""

_HEX = "hex(originator_id)"
_UUID = "||'-'||".join(
    f"substr({_HEX}, {a}, {n})" for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
)
SQLITE = f"""
INSERT INTO {{table}} ({COLUMNS})
SELECT lower({_UUID}), id, recorded_at, recorded_at / {DAY_US}, json_extract(s, '$.deployment'),
       json_extract(s, '$.deployment_version'), json_extract(s, '$.served_model'), json_extract(s, '$.leader'),
       json_extract(s, '$.request_id'), json_extract(s, '$.features'), json_extract(s, '$.outputs'),
       json_extract(s, '$.flags'), json_array_length(s, '$.flags') > 0, json_extract(s, '$.actor'),
       json_extract(s, '$.sealed.subject_ref'), json_extract(s, '$.sealed.fields')
FROM (SELECT id, originator_id, recorded_at, CAST(state AS TEXT) AS s
      FROM {ev.events_table.name} WHERE id > :after AND id <= :upto AND topic = :topic)
"""


def copy_predictions(conn: sa.Connection, table: sa.Table, after: int, upto: int) -> None:
    """Insert the index row of every prediction made in positions (after, upto]."""
    sql = POSTGRES if conn.dialect.name == "postgresql" else SQLITE
    conn.execute(
        sa.text(sql.format(table=table.name)), {"after": after, "upto": upto, "topic": MADE}
    )
