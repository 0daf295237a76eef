"""The prediction index, its outcomes, and the performance cubes, in one projection.

They share one lookup (an outcome needs its prediction's outputs and slices), so one
runner keeps them consistent with each other at every position.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from ledger import log
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from ledger.domain.subjects import Subject
from ledger.domain.training import TrainingRun
from projections import events as ev
from projections.base import Projection
from projections.cubes import Deltas, EpochClock, add_outcome, new_deltas, predicted_values, scored
from projections.erasure import erased_slices, forget
from projections.facts import add_latest, decoded, page_facts, restore_clock, stored_facts
from projections.made_sql import copy_predictions
from projections.page_writes import OUTCOME_COLUMNS, prepare, write
from projections.pipeline import Ticket
from projections.slicing import quantile_edges, sliceable, slicer
from projections.tables import prediction_tables

RECENT = 20_000  # predictions whose facts stay in memory (corrections, outcomes in bursts)
OUTCOME_TOPIC = log.topic(Prediction.OutcomeRecorded)  # most of a page's decoded events
ANSWERED = 500_000  # prediction hashes kept (about 30 MB) before a rebuild looks outcomes up again
UNKNOWN = {
    "task": "classification",
    "sliced": [],
    "bins": {},
    "slicer": slicer([], {}),
}  # a deployment the projection never saw


class ReadAhead(NamedTuple):
    """The next page, being copied and its outcomes' facts read by the copier."""

    after: int
    upto: int
    forgets: int  # the projection's forget count when it started: a later forget voids the rows
    job: Ticket


class PredictionsProjection(Projection):
    """Prediction index (a row per prediction), outcomes by position, performance cubes."""

    name = "predictions"
    version = 5  # 2: slices on each outcome; 3: erasure; 4: cells by epoch, coarse and fine; 5: day in the cells' slice index
    rebuild_page = (
        25_000  # fewer pages, fewer statements: a page's outcomes are a third of it, held briefly
    )
    pipelined = True  # a rebuild may run the writes on a second connection (runner, projections/pipeline.py)
    topics = frozenset(  # decoded in Python; Prediction.Made is copied in SQL (apply_range)
        [
            Prediction.OutcomeRecorded,
            Deployment.Created,
            Deployment.SchemaChanged,
            Deployment.ModelAdded,
            TrainingRun.Completed,
            Subject.Forgotten,
        ]
    )

    def __init__(self, generation: int):
        super().__init__(generation)
        self.deployments: dict[str, dict[str, Any]] | None = None  # by deployment id, lazily loaded
        # prediction id -> facts and latest outcome; exact because this instance applied
        # every event since it was made (a failed page discards the instance)
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.clock: EpochClock | None = None  # restored from the outcome rows on first use
        # hashes of the predictions with an outcome, kept while this instance has seen every
        # outcome (it started on empty tables: a rebuild): the others need no outcome lookup
        self.answered: set[int] | None = None
        # the next page's predictions being copied by the copier, then their outcomes' facts read
        self.ahead: ReadAhead | None = None
        self.prefetched: dict[
            str, tuple[Any, ...]
        ] = {}  # this page's facts rows read by the copier
        self.forgets = 0  # a forget changes facts (erased): rows read before it are dropped

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        tables = prediction_tables(metadata, suffix)
        assert (
            tuple(c.name for c in tables["outcomes"].columns) == OUTCOME_COLUMNS
        )  # _count's row order
        return tables

    def apply_range(self, conn: sa.Connection, after: int, upto: int) -> None:
        ahead, self.ahead, self.prefetched = (
            self.ahead,
            None,
            {},
        )  # read-ahead rows serve one page only
        if self.copier is None:
            copy_predictions(conn, self.tables["predictions"], after, upto)
            return
        if (
            ahead is not None and ahead.after == after
        ):  # prefetched up to ahead.upto <= upto (the head only grows)
            rows = ahead.job.wait()
            if ahead.forgets == self.forgets:
                self.prefetched = {row[0]: row for row in rows}
            after = ahead.upto
        if after < upto:
            self.copier.call(lambda c: copy_predictions(c, self.tables["predictions"], after, upto))

    def prefetch(self, after: int, upto: int) -> None:
        """Start copying the next page's predictions, and reading its outcomes' facts, while
        this page's outcomes are computed and the writer writes the pages before.

        On the copier's connection, beside the writer's: the copy is most of a rebuild's
        database work and needs nothing the writer writes (a forget erases only rows made
        before it, copied with their page; facts read before a forget are dropped)."""
        if self.copier is not None and after < upto:
            self.ahead = ReadAhead(
                after,
                upto,
                self.forgets,
                self.copier.submit(lambda c: self._next_page(c, after, upto)),
            )

    def _next_page(self, conn: sa.Connection, after: int, upto: int) -> list[tuple[Any, ...]]:
        copy_predictions(conn, self.tables["predictions"], after, upto)
        return page_facts(conn, self.tables, after, upto, Prediction.OutcomeRecorded)

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        if self.deployments is None:
            self._load_deployments(conn)
        outcomes: list[ev.Event] = []
        for e in events:
            if e.topic == OUTCOME_TOPIC:
                outcomes.append(e)
                continue
            if outcomes:  # slicing may change: count the outcomes before it under the old one
                self._outcomes(conn, outcomes)
                outcomes = []
            if e.kind == "Subject.Forgotten":
                self._forget(conn, e)
            else:
                self._setup(conn, e)
        if outcomes:
            self._outcomes(conn, outcomes)

    # -- deployments and profiles (what slicing needs) ---------------------------------
    def _load_deployments(self, conn: sa.Connection) -> None:
        t = self.tables["deployments"]
        self.deployments = {
            r["deployment_id"]: dict(r) for r in conn.execute(sa.select(t)).mappings()
        }

    def _setup(self, conn: sa.Connection, e: ev.Event) -> None:
        assert self.deployments is not None
        s, t = e.state, self.tables["deployments"]
        if e.kind == "TrainingRun.Completed":
            edges = {
                f: q
                for f in dict(s["reference_profile"].get("features", s["reference_profile"]))
                if (q := quantile_edges(s["reference_profile"], f))
            }
            conn.execute(
                self.tables["profiles"].insert().values(model_id=s["model_id"], edges=edges)
            )
            return
        if e.kind == "Deployment.Created":
            row = {
                "deployment_id": e.originator_id,
                "name": s["name"],
                "task": s["task"],
                "positive_label": s["positive_label"],
                "sliced": sliceable(s["schema"]),
                "bins": {},
            }
            conn.execute(t.insert().values(**row))
            self.deployments[e.originator_id] = row
            return
        row = self.deployments[e.originator_id]
        row.pop("slicer", None)  # made again from the new slicing when next needed
        if e.kind == "Deployment.SchemaChanged":
            row["sliced"] = sliceable(s["schema"])
        else:  # ModelAdded: numeric features still without edges take this model's
            p = self.tables["profiles"]
            edges = (
                conn.execute(sa.select(p.c.edges).where(p.c.model_id == s["model_id"])).scalar()
                or {}
            )
            row["bins"] = {
                **{f: q for f, q in edges.items() if f not in row["bins"]},
                **row["bins"],
            }
        conn.execute(
            t.update()
            .where(t.c.deployment_id == e.originator_id)
            .values(sliced=row["sliced"], bins=row["bins"])
        )

    def _forget(self, conn: sa.Connection, e: ev.Event) -> None:
        """Mark the subject's rows erased and move their counts to the `erased` slice."""
        assert self.deployments is not None
        tasks = {d["name"]: d["task"] for d in self.deployments.values()}
        if self.writer is None:
            erased = forget(conn, self.tables, tasks, e)
        else:  # after the writes queued before it, on the writer's connection (it reads and changes their rows)
            erased = self.writer.call(lambda c: forget(c, self.tables, tasks, e))
        self.forgets, self.prefetched = self.forgets + 1, {}
        for prediction_id in erased:
            self.recent.pop(prediction_id, None)  # its cached slices are no longer the counted ones

    # -- outcomes ------------------------------------------------------------------------
    def _outcomes(self, conn: sa.Connection, outcomes: list[ev.Event]) -> None:
        assert self.deployments is not None
        if self.clock is None:
            self.clock = restore_clock(conn, self.tables["outcomes"])
            self.answered = set() if self.clock.last == -1 else None
        by_name = {d["name"]: d for d in self.deployments.values()}
        known = self._facts(conn, {o.originator_id for o in outcomes}, by_name)
        deltas, rows, last = new_deltas(), [], self.clock.last
        for o in outcomes:
            prediction = known.get(o.originator_id)
            if prediction is None:
                continue  # cannot happen in an intact log: an outcome follows its prediction
            rows.append(
                self._count(deltas, o, prediction, by_name.get(prediction["deployment"], UNKNOWN))
            )
        if self.answered is not None:
            self.answered.update(hash(o.originator_id) for o in outcomes)
            if len(self.answered) > ANSWERED:
                self.answered = None  # bounded memory: look outcomes up again
        writes = prepare(self.tables, conn.dialect.name == "postgresql", rows, deltas, last)
        if self.writer is None:
            write(conn, writes)
        else:
            self.writer.submit(lambda c: write(c, writes))

    def _count(
        self, deltas: Deltas, o: ev.Event, prediction: dict[str, Any], deployment: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Add one outcome's cells; returns its outcome row (a tuple in OUTCOME_COLUMNS' order)."""
        assert self.clock is not None
        epoch, actual, previous = (
            self.clock.next(o.recorded_at),
            o.state["actual"],
            prediction["latest"],
        )
        slice_of = deployment.get("slicer")
        if slice_of is None:
            slice_of = deployment["slicer"] = slicer(deployment["sliced"], deployment["bins"])
        slices = slice_of(prediction["features"])
        if prediction["erased"]:  # a forgotten subject's later outcomes are counted as erased too
            slices = erased_slices(slices)
        add_outcome(deltas, prediction, deployment["task"], actual, slices, previous, epoch)
        prediction["latest"] = (True, actual, slices)
        return (
            o.position,
            o.originator_id,
            o.recorded_at,
            epoch,
            prediction["deployment"],
            prediction["day"],
            prediction["predicted"],
            actual,
            previous[0],
            previous[1],
            slices,
            previous[2],
            o.state.get("observed_at"),
            o.state["actor"],
        )

    def _facts(
        self, conn: sa.Connection, ids: set[str], by_name: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """The facts of these predictions and their latest outcome, from memory or one lookup."""
        known = {pid: self.recent[pid] for pid in ids if pid in self.recent}  # held for this page
        missing = sorted(ids - known.keys())
        if missing:
            answered = self.answered
            maybe = (
                missing if answered is None else [pid for pid in missing if hash(pid) in answered]
            )
            if maybe and self.writer is not None:
                self.writer.drain()  # their outcome rows may still be queued
            for pid, facts in self._lookup(conn, missing, maybe).items():
                facts["predicted"] = predicted_values(facts.pop("outputs"))
                facts["scored"] = scored(
                    facts["predicted"], by_name.get(facts["deployment"], UNKNOWN)["task"]
                )
                known[pid] = facts
                self._remember(pid, facts)
        return known

    def _lookup(
        self, conn: sa.Connection, ids: list[str], maybe: list[str]
    ) -> dict[str, dict[str, Any]]:
        """stored_facts, from the rows the copier read ahead where it has them."""
        ready = [self.prefetched[pid] for pid in ids if pid in self.prefetched]
        if not ready:
            return stored_facts(conn, self.tables, ids, maybe)
        facts = dict(map(decoded, ready))
        rest = [pid for pid in ids if pid not in facts]
        if rest:
            facts.update(stored_facts(conn, self.tables, rest, []))
        add_latest(conn, self.tables, facts, maybe)
        return facts

    def _remember(self, prediction_id: str, facts: dict[str, Any]) -> None:
        self.recent[prediction_id] = facts
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)
