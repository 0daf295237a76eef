"""Follow the event table into a projection's tables, a page at a time, exactly once.

Each page's rows and the new position commit in one transaction; the position moves
by compare-and-set. A rebuild fills a new generation of tables beside the live ones
and swaps them in with the same compare-and-set, so a follower that slipped past is
refused and reloads.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ledger import log
from ledger.errors import StorageUnavailable
from ledger.timeline import head_position
from projections import events as ev
from projections import stalls
from projections.base import (
    PositionMoved,
    Projection,
    compare_and_set,
    ensure_positions,
    positions,
    read_position,
)
from projections.locks import runner_lock
from projections.pipeline import Writer

Progress = Callable[[int, int], None]
REBUILD_PAGE = 5000  # a rebuild's pages are nobody's latency: bigger pages, fewer round trips
WRITER_SWITCH_INTERVAL = 0.0005  # seconds; see _fill
COLLECT_PAGES = 8  # a rebuild runs Python's cyclic collector once every this many pages
STALL_BACKOFF = (1.0, 60.0)  # seconds: the first retry of a page that failed, and the cap

logger = logging.getLogger("ledger.projections")


def relax_durability(conn: sa.Connection) -> None:
    """A page may skip the WAL flush: a crash loses whole pages (rows and position alike),
    which the runner then applies again, so nothing is lost or doubled."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


class Runner:
    """One projection's runner: `follow` forever, `catch_up` once, or `rebuild` beside."""

    def __init__(
        self,
        engine: sa.Engine,
        projection: type[Projection],
        page_size: int = 1000,
        poll_interval: float = 0.2,
        backoff: tuple[float, float] = STALL_BACKOFF,
    ):
        self.engine, self.cls = engine, projection
        self.page_size, self.poll_interval = page_size, poll_interval
        self.backoff = backoff
        self.live: Projection | None = None
        self.at = self.reaching = 0  # the range (at, reaching] the last step applied
        self.stall: stalls.Stall | None = None  # set while a page fails; see _failed

    # -- following ---------------------------------------------------------------
    def follow(self, stop: threading.Event | None = None, on_page: Progress | None = None) -> None:
        """Hold the projection's lock and apply new events until `stop` is set."""
        stop = stop or threading.Event()
        lock = runner_lock(self.engine, self.cls.name)
        lock.acquire(wait=True, poll=self.poll_interval)
        try:
            self.upgrade_if_needed()
            self.stall = self._left_stall()
            while not stop.is_set():
                lock.check()
                try:
                    moved = self.step(on_page)
                except PositionMoved:
                    continue  # a rebuild swapped generations: read the new state
                except Exception as error:  # noqa: BLE001 - recorded, logged, retried with backoff
                    stop.wait(self._failed(error))
                    continue
                if moved == 0:
                    lock.wait(self.poll_interval)
        finally:
            lock.release()

    # -- stalls ------------------------------------------------------------------------
    def _failed(self, error: Exception) -> float:
        """Record the stall where every process reads it, log it once, and return the backoff.

        A failed page is retried an event at a time, so the stall soon names the one event
        it cannot apply (and the events before it are applied meanwhile)."""
        upto = max(self.reaching, self.at + 1)
        attempts = self.stall.attempts + 1 if self.stall is not None else 1
        first, cap = self.backoff
        delay = min(cap, first * 2 ** (attempts - 1))
        try:
            self.stall = stalls.record(self.engine, self.cls.name, self.at, upto, error)
        except Exception as unrecorded:  # noqa: BLE001 - the database may be what failed
            logger.warning("projection stall not recorded: %s", stalls.one_line(unrecorded))
            self.stall = stalls.Stall(
                self.at,
                upto,
                type(error).__qualname__,
                stalls.one_line(error),
                0,
                attempts,
            )
        logger.error(
            "projection %s stalled at position %d (events %d..%d): %s: %s; attempt %d, "
            "retrying in %.3g s",
            self.cls.name,
            self.at,
            self.at + 1,
            upto,
            type(error).__qualname__,
            stalls.one_line(error),
            self.stall.attempts,
            delay,
        )
        return delay

    def _passed(self, position: int) -> None:
        """Drop the stall once the projection has applied the range it failed on."""
        if self.stall is None or position < self.stall.upto:
            return
        try:
            stalls.clear(self.engine, self.cls.name)
        except Exception as error:  # noqa: BLE001 - cleared on the next page instead
            logger.warning("projection stall not cleared: %s", stalls.one_line(error))
            return
        logger.warning(
            "projection %s moving again: applied past position %d after %d attempts",
            self.cls.name,
            self.stall.upto,
            self.stall.attempts,
        )
        self.stall = None

    def _left_stall(self) -> stalls.Stall | None:
        """A stall an earlier runner recorded: this one clears it once it passes."""
        with self.engine.connect() as conn:
            return stalls.read(conn, self.cls.name)

    def _page_size(self) -> int:
        """One event at a time inside a range that failed, so the stall names its event."""
        return 1 if self.stall is not None and self.at < self.stall.upto else self.page_size

    def catch_up(self, on_page: Progress | None = None) -> int:
        """Apply pages until none is left (the caller holds the lock, or is a test)."""
        self.initialise()
        total = 0
        while (done := self.step(on_page)) > 0:
            total += done
        return total

    def initialise(self) -> None:
        """The position row and the first generation's tables, on a projection's first run."""
        with self.engine.begin() as conn:
            ensure_positions(conn)
            stalls.ensure_stalls(conn)
            if read_position(conn, self.cls.name) is None:
                self.cls(1).create_tables(conn)
                conn.execute(
                    positions.insert().values(
                        name=self.cls.name, position=0, generation=1, version=self.cls.version
                    )
                )

    def upgrade_if_needed(self) -> None:
        """A changed table schema rebuilds beside the live tables and swaps."""
        self.initialise()
        with self.engine.connect() as conn:
            state = read_position(conn, self.cls.name)
        if state is not None and state.version != self.cls.version:
            self.rebuild()

    def step(self, on_page: Progress | None = None) -> int:
        """One page in one transaction; returns how far the position moved (0: nothing new)."""
        try:
            with self.engine.begin() as conn:
                relax_durability(conn)
                position, generation, _ = read_position(conn, self.cls.name) or (0, 1, 0)
                self.at = position
                if self.live is None or self.live.generation != generation:
                    self.live = self.cls(generation)
                new = self._apply_page(conn, self.live, position, self._page_size())
                if new == position:
                    return 0
                compare_and_set(conn, self.cls.name, generation, position, new)
        except BaseException:
            self.live = None  # in-memory caches may hold the rolled-back page
            raise
        self._passed(new)
        if on_page:
            on_page(new, new)
        return new - position

    def _apply_page(
        self,
        conn: sa.Connection,
        projection: Projection,
        position: int,
        page_size: int | None = None,
    ) -> int:
        upto = ev.head(conn)
        # Every id up to `upto` that is not there never will be: ids below a committed id
        # are final (writers draw ids under the clock row lock and commit in id order).
        size = page_size or self.page_size
        rows, reached = log.raw_page(conn, position, upto, size, projection.topics)
        self.reaching = reached  # a failure below names this range
        projection.apply_range(conn, position, reached)
        projection.prefetch(reached, min(upto, reached + size))
        if rows:
            projection.apply(conn, [ev.decode(r, nul_safe=True) for r in rows])
        return reached

    # -- rebuilding ----------------------------------------------------------------
    def rebuild(self, progress: Progress | None = None) -> int:
        """Fill a new generation from position 0 beside the live one, then swap it in."""
        self.initialise()
        lock = runner_lock(self.engine, self.cls.name + ":rebuild")
        lock.acquire(wait=True, poll=self.poll_interval)
        try:
            return self._rebuild(progress)
        finally:
            lock.release()

    def _rebuild(self, progress: Progress | None) -> int:
        with self.engine.begin() as conn:
            _, live_generation, _ = read_position(conn, self.cls.name) or (0, 1, 0)
        fresh = self.cls(live_generation + 1)
        with self.engine.begin() as conn:
            fresh.drop_tables(conn)  # leftovers of a rebuild that died
            fresh.create_tables(conn, with_indexes=False)  # bulk load first, index after
        position = self._fill(fresh, 0, progress)
        self._create_indexes(fresh)
        with self.engine.begin() as conn:
            fresh.analyze(conn)  # a swapped-in table with no statistics gets bad plans
        with self.engine.begin() as conn:
            while (new := self._apply_page(conn, fresh, position)) != position:
                position = new
            live = read_position(conn, self.cls.name)
            assert live is not None
            compare_and_set(
                conn,
                self.cls.name,
                live_generation,
                live.position,
                position,
                version=self.cls.version,
                new_generation=fresh.generation,
            )
        with (
            self.engine.begin() as conn
        ):  # after the swap commits: a follower mid-page aborts on it
            self.cls(live_generation).drop_tables(conn)
        self.live = None
        return position

    def _create_indexes(self, fresh: Projection) -> None:
        """The deferred indexes; on PostgreSQL on two connections, the slowest (GIN) started first:
        the GIN index of the predictions' features takes as long as all the others together."""
        if self.engine.dialect.name != "postgresql":
            with self.engine.begin() as conn:
                fresh.create_indexes(conn)
            return
        indexes = sorted(
            (i for t in fresh.tables.values() for i in t.indexes),
            key=lambda i: i.dialect_options["postgresql"].get("using") != "gin",
        )
        pending, errors = iter(indexes), []

        def build() -> None:
            try:
                with self.engine.begin() as conn:
                    for index in pending:  # shared: each index taken by one thread
                        index.create(conn, checkfirst=True)
            except Exception as error:  # re-raised below, on the rebuild's thread
                errors.append(error)

        helper = threading.Thread(target=build, name="rebuild-indexes")
        helper.start()
        build()
        helper.join()
        if errors:
            raise errors[0]

    def _fill(self, projection: Projection, position: int, progress: Progress | None) -> int:
        """Pages from `position` up to the head; on PostgreSQL a pipelined projection's writes
        run on a second connection (projections/pipeline.py), all committed on return."""
        if not projection.pipelined or self.engine.dialect.name != "postgresql":
            return self._fill_pages(projection, position, progress)
        writer = projection.writer = Writer(self.engine)
        copier = projection.copier = Writer(self.engine)
        # The writer thread needs the GIL back after every statement; with the default 5 ms
        # switch interval it waits for this busy thread's turn to end, the database idle meanwhile.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
        try:
            position = self._fill_pages(projection, position, progress)
            copier.drain()
            writer.drain()
            return position
        finally:
            sys.setswitchinterval(interval)
            projection.writer = projection.copier = None
            copier.close()
            writer.close()

    def _fill_pages(self, projection: Projection, position: int, progress: Progress | None) -> int:
        with collected_by_page() as collect:
            return self._fill_loop(projection, position, progress, collect)

    def _fill_loop(
        self,
        projection: Projection,
        position: int,
        progress: Progress | None,
        collect: Callable[[], None],
    ) -> int:
        target = time.monotonic()
        while True:
            collect()
            with self.engine.begin() as conn:
                relax_durability(conn)
                new = self._apply_page(
                    conn, projection, position, projection.rebuild_page or REBUILD_PAGE
                )
                head = ev.head(conn) if progress else 0
            if new == position:
                return position
            position = new
            if progress and time.monotonic() >= target:
                progress(position, head)
                target = time.monotonic() + 0.2


@contextmanager
def collected_by_page() -> Iterator[Callable[[], None]]:
    """Python's cyclic collector run every COLLECT_PAGES pages (the returned call counts them)
    instead of every 700 allocations.

    A rebuild's page allocates millions of short-lived containers (decoded facts, cells,
    rows); the automatic collector then keeps re-scanning the long-lived ones (recent
    facts, SQLAlchemy's caches): a third of the predictions rebuild's CPU at 1M events.
    Refcounting still frees what a page drops at once; the few cycles a page makes (a
    transaction's objects) wait a few pages, so memory stays bounded."""
    enabled, pages = gc.isenabled(), 0

    def collect() -> None:
        nonlocal pages
        pages += 1
        if pages % COLLECT_PAGES == 0:
            gc.collect()

    gc.disable()
    gc.freeze()  # what exists before the rebuild (modules, caches) is not scanned again
    try:
        yield collect
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def wait_for(engine: sa.Engine, name: str, position: int, timeout: float = 5.0) -> bool:
    """Block until projection `name` has applied `position` (True) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            try:
                state = read_position(conn, name)
            except (sa.exc.ProgrammingError, sa.exc.OperationalError):
                state = None  # no runner has created the position table yet
        if state is not None and state.position >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def catch_up(
    engine: sa.Engine,
    projection: type[Projection],
    position: int | None = None,
    timeout: float = 30.0,
) -> None:
    """Bring a projection to `position` (the head when None): run it here, or wait for the
    runner that holds its lock; StorageUnavailable if that runner does not get there."""
    lock = runner_lock(engine, projection.name)
    if lock.acquire(wait=False):
        try:
            Runner(engine, projection).catch_up()
        finally:
            lock.release()
        return
    target = head_position(engine) if position is None else position
    if not wait_for(engine, projection.name, target, timeout):
        with engine.connect() as conn:
            stall = stalls.read(conn, projection.name)
        why = (
            f"it is stalled at position {stall.position}: {stall.error}: {stall.reason}"
            if stall is not None
            else "is its runner stuck?"
        )
        raise StorageUnavailable(f"the {projection.name} projection is behind the log; {why}")
