"""CPU per single-row prediction, split by phase, through the product's own functions.

    .venv/bin/python -m bench.phases [--n 2000]

In-process, on a fresh PostgreSQL database holding the demo's churn deployment (trained as
`ledger serve --demo` trains it) and the README's example row. Each phase is one real
function of the product (serving.predict, serving.scoring, serving.flags, ledger.recording,
the app's JSON media handler), called `n` times on `n` distinct requests in a loop that
drops what each call returns, as a server does (the results a later phase needs are made
again, untimed); the clock is time.process_time_ns (this process, every thread: the group
committer's writer thread included), so waiting for a core or for fsync does not count. A
phase whose function calls the others is listed with its parts and its remainder ("rest");
what Falcon, the middleware and falcon.testing add is the end-to-end call less the phases,
and each middleware's share of it is clocked in an end-to-end run of its own (every hook
of every middleware wrapped, the clock's own cost taken off). The database's CPU per
insert (this database's backends and the WAL writer, from /proc) is beside it.
Prints a table on stderr and one JSON document on stdout's last line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import falcon
import orjson
from falcon.testing import TestClient

from api.app import LedgerApp, create_app
from api.demo import create_deployment, ensure_keys, specs_by_deployment
from api.observability import configure_logging
from bench.common import create_postgres_database, drop_postgres_database
from bench.floor_app import create_floor_app
from bench.http_compare import PREDICT, ROW, cpu_seconds, postgres_pids
from bench.unrecorded_app import create_unrecorded_app
from ledger import recording
from ledger.application import Ledger
from ledger.ids import DEFAULT_CLIENT
from ledger.settings import Settings
from serving import predict
from serving.flags import row_flags
from serving.scoring import score_isolated, vote

DEPLOYMENT = "churn"
ACTOR = "bench:phases"
CLOCK = "time.process_time_ns, this process (all threads), mean over n calls"


def timed(
    call: Callable[[Any], Any], inputs: Sequence[Any], keep: bool = True
) -> tuple[float, list[Any]]:
    """CPU µs per call, and what each call returned (`keep`: called again, untimed, for that).

    The timed loop drops what each call returns, as a server does: n results kept alive
    while the loop runs make every garbage collection walk them, which a request never pays
    (it was most of score_request's "rest" when the results were kept)."""
    started = time.process_time_ns()
    for item in inputs:
        call(item)
    us = (time.process_time_ns() - started) / 1000 / len(inputs)
    return us, [call(item) for item in inputs] if keep else []


class Phases:
    """Rows of (phase, the function timed, µs per request), in the order they run."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, phase: str, function: str, us: float, part_of: str | None = None) -> float:
        self.rows.append({"phase": phase, "function": function, "us": us, "part_of": part_of})
        return us


def bodies(prefix: str, n: int) -> list[bytes]:
    return [orjson.dumps({"request_id": f"{prefix}-{i}", "features": ROW}) for i in range(n)]


def no_recording(app: LedgerApp, n: int, run: str) -> tuple[Phases, list[predict.ScoredRequest]]:
    """Parse, validate, score, flag and answer, each phase timed alone; the scored requests."""
    serving, phases = app.services.serving, Phases()
    handler = app.req_options.media_handlers[falcon.MEDIA_JSON]
    raw = bodies(run, n)
    parse, parsed = timed(
        lambda b: handler.deserialize(io.BytesIO(b), falcon.MEDIA_JSON, len(b)), raw
    )
    phases.add("parse the body", "the app's JSON media handler (api.params.json_loads)", parse)
    request_us, requests = timed(predict.REQUEST_SCHEMA.load, parsed)
    runtime_us, runtimes = timed(lambda _: serving.scorer.runtime(DEPLOYMENT), parsed)
    runtime = runtimes[0]
    rows_us, rows = timed(
        lambda r: predict.validate_rows(serving, runtime, [r["features"]], False), requests
    )
    per_model: dict[str, list[list[dict[str, Any]]]] = {}
    models_us = []
    for model in runtime.models:

        def score(rows: list[dict[str, Any]], model: Any = model) -> list[dict[str, Any]]:
            return score_isolated(model, rows, runtime.leader)

        us, per_model[model.model_id] = timed(score, rows)
        models_us.append((model.model_id, model.scorer, us))
    flags_us, _ = timed(lambda r: row_flags(runtime.profile, r[0]), rows, keep=False)
    outputs = [
        {model_id: results[i][0] for model_id, results in per_model.items()} for i in range(n)
    ]
    vote_us, _ = timed(lambda o: vote(runtime, o), outputs, keep=False)
    score_us, _ = timed(lambda r: serving.scorer.score(runtime, r), rows, keep=False)
    whole, scored = timed(lambda b: predict.score_request(serving, DEPLOYMENT, b), parsed)
    phases.add("validate and score (whole)", "serving.predict.score_request", whole)
    parts = [
        phases.add(
            "validate the request", "serving.predict.REQUEST_SCHEMA.load", request_us, "score"
        ),
        phases.add(
            "deployment runtime (cached, version checked)", "Scorer.runtime", runtime_us, "score"
        ),
        phases.add(
            "validate the row", "serving.predict.validate_rows (row schema)", rows_us, "score"
        ),
    ]
    phases.add("score every model, flag, choose (whole)", "Scorer.score", score_us, "score")
    scoring_parts = [
        phases.add(
            f"score model {model_id[:8]} ({scorer})",
            "serving.scoring.score_isolated",
            us,
            "score",
        )
        for model_id, scorer, us in models_us
    ]
    scoring_parts += [
        phases.add("flags", "serving.flags.row_flags", flags_us, "score"),
        phases.add("choose the served model", "serving.scoring.vote", vote_us, "score"),
    ]
    phases.add(
        "scoring's rest (outputs, RowScore)",
        "Scorer.score less its parts",
        score_us - sum(scoring_parts),
        "score",
    )
    phases.add(
        "score_request's rest (batch check, ids, ScoredRequest)",
        "score_request less its parts and Scorer.score",
        whole - sum(parts) - score_us,
        "score",
    )
    answer_us, answers = timed(predict.unrecorded_answer, scored)
    phases.add("build the answer", "serving.predict.unrecorded_answer", answer_us)
    encode_us, _ = timed(lambda a: handler.serialize(a, falcon.MEDIA_JSON), answers, keep=False)
    phases.add("encode the answer", "the app's JSON media handler (orjson)", encode_us)
    return phases, scored


def recorded(
    app: LedgerApp,
    scored: list[predict.ScoredRequest],
    spare: list[predict.ScoredRequest],
    url: str,
) -> tuple[Phases, float]:
    """Build, seal, encode and insert each scored request's prediction; the database's CPU µs per insert."""
    serving, ledger, phases = app.services.serving, app.services.ledger, Phases()

    def seal(s: predict.ScoredRequest) -> Any:
        return serving.sealer.seal_many(
            s.runtime.schema,
            s.rows,
            deployment=s.runtime.name,
            request_ids=s.request_ids,
            before_new_keys=predict.retries_checked(serving, s, DEFAULT_CLIENT),
            client=DEFAULT_CLIENT,
        )

    seal_us, _ = timed(seal, scored, keep=False)
    build_us, built = timed(
        lambda s: predict.build_predictions(serving, s, ACTOR, DEFAULT_CLIENT), scored
    )
    phases.add("build the event (whole)", "serving.predict.build_predictions", build_us)
    phases.add("seal the personal fields", "Sealer.seal_many", seal_us, "build")
    phases.add(
        "the event's fields (digest, scoring, NewPrediction)",
        "build_predictions less seal_many",
        build_us - seal_us,
        "build",
    )
    encode_us, made = timed(lambda p: recording.stored_events(ledger, p[0]), built)
    phases.add("encode (mapper, transcoder)", "ledger.recording.stored_events", encode_us)
    database = postgres_pids(url)
    db_before = cpu_seconds(database)
    insert_us, _ = timed(lambda events: recording.insert(ledger, [events]), made, keep=False)
    db_us = 1e6 * (cpu_seconds(database) - db_before) / len(made)
    phases.add("insert (whole)", "ledger.recording.insert (through the group committer)", insert_us)
    writer = getattr(ledger.recorder, "batch_writer", None)
    if writer is not None:
        spare_made = [
            recording.stored_events(ledger, p)
            for s in spare
            for p in predict.build_predictions(serving, s, ACTOR, DEFAULT_CLIENT)
        ]
        direct_us, _ = timed(writer.insert, spare_made, keep=False)
        phases.add("the insert", "the recorder's batch_writer.insert", direct_us, "insert")
        phases.add(
            "hand to the writer and wait",
            "ledger.recording.insert less it",
            insert_us - direct_us,
            "insert",
        )
    answers_us, _ = timed(lambda p: predict.row_answer(p[0], False), built, keep=False)
    phases.add("build the answer", "serving.predict.row_answer", answers_us)
    return phases, db_us


def end_to_end(app: falcon.App, key: str, n: int, run: str) -> float:
    """CPU µs per request through falcon.testing: middleware, auth, routing, the resource."""
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(body: bytes) -> None:
        answer = client.simulate_post(PREDICT, body=body, headers=headers)
        if answer.status_code != 201:
            raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")

    return timed(post, bodies(run, n), keep=False)[0]


HOOKS = ("process_request", "process_resource", "process_response")


class Clocked:
    """A middleware whose every hook adds its CPU to a total (the clock's own cost taken off)."""

    def __init__(self, inner: Any, overhead_ns: float):
        self.inner, self.overhead_ns, self.ns, self.calls = inner, overhead_ns, 0, 0
        for hook in HOOKS:
            if hasattr(inner, hook):
                setattr(self, hook, self._clocked(getattr(inner, hook)))

    def _clocked(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(clocked: Clocked, *args: Any) -> Any:
            started = time.process_time_ns()
            try:
                return method(*args)
            finally:
                clocked.ns += time.process_time_ns() - started
                clocked.calls += 1

        return types.MethodType(call, self)  # falcon takes bound methods only

    def us(self, n: int) -> float:
        return (self.ns - self.calls * self.overhead_ns) / 1000 / n


def clock_overhead_ns(n: int = 20_000) -> float:
    """What one clocked call of a method that does nothing costs, in ns."""
    idle = Clocked(type("Idle", (), {"process_request": lambda self, *a: None})(), 0.0)
    started = time.process_time_ns()
    for _ in range(n):
        idle.process_request(None, None)  # type: ignore[attr-defined]
    return (time.process_time_ns() - started) / n


def middleware_split(app: falcon.App, key: str, n: int, run: str) -> list[dict[str, Any]]:
    """CPU µs per request of each middleware (every hook it has), end to end on `app`.

    Each middleware is wrapped in Clocked for this run only; the app is put back after it.
    """
    unwrapped = list(app._unprepared_middleware)
    overhead = clock_overhead_ns()
    clocked = [Clocked(m, overhead) for m in unwrapped]

    def prepare(middleware: list[Any]) -> None:
        app._unprepared_middleware = middleware
        app._middleware = app._prepare_middleware(
            middleware, independent_middleware=app._independent_middleware
        )

    prepare(clocked)  # type: ignore[arg-type]
    try:
        end_to_end(app, key, n, run)
    finally:
        prepare(unwrapped)
    return [
        {
            "middleware": type(c.inner).__name__,
            "module": type(c.inner).__module__,
            "hooks": [h for h in HOOKS if hasattr(c.inner, h)],
            "us": c.us(n),
        }
        for c in clocked
    ]


def run(n: int) -> dict[str, Any]:
    url = create_postgres_database("ledger_bench_phases")
    try:
        with tempfile.TemporaryDirectory() as home:
            # As under gunicorn: JSON log lines on stderr (here a file), multiprocess metrics,
            # so that "Falcon + middleware" carries what a served request pays for them.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(home) / "metrics")
            (Path(home) / "metrics").mkdir()
            terminal, sys.stderr = sys.stderr, (Path(home) / "server.log").open("w")
            configure_logging()
            # The limiter still takes a token per request; a burst this size never refuses one
            # (back-to-back runs of n requests outpace the default rate of one key).
            settings = Settings(home=Path(home), database_url=url, rate_limit_burst=1e9)
            ledger = Ledger(replace(settings, group_commit=False))
            try:
                create_deployment(ledger, DEPLOYMENT, specs_by_deployment()[DEPLOYMENT])
                key = ensure_keys(ledger, settings)["predictor"]
            finally:
                ledger.close()
            on, off = create_app(settings), create_unrecorded_app(settings)
            try:
                for app in (on, off):  # runtimes, schemas, keys, subject key, connections
                    end_to_end(app, key, 200, "warm")
                scoring, scored = no_recording(on, n, "phase")
                _, spare = no_recording(on, n, "spare")
                recording_phases, db_us = recorded(on, scored, spare, url)
                floor_us = end_to_end(create_floor_app(), key, n, "floor")
                off_us = end_to_end(off, key, n, "off")
                split = middleware_split(off, key, n, "split")
                on_us = end_to_end(on, key, n, "on")
            finally:
                for app in (on, off):
                    app.services.ledger.close()
                sys.stderr.close()
                sys.stderr = terminal
    finally:
        drop_postgres_database(url)
    return {
        "n": n,
        "clock": CLOCK,
        "no_recording": scoring.rows,
        "recording": recording_phases.rows,
        "database_us_per_insert": db_us,
        "end_to_end_us": {"floor": floor_us, "off": off_us, "on": on_us},
        "middleware_us": split,
    }


def totals(data: dict[str, Any]) -> dict[str, float]:
    """The whole-phase sums and what the end-to-end calls add beyond them."""

    def whole(rows: list[dict[str, Any]]) -> float:
        return sum(r["us"] for r in rows if r["part_of"] is None)

    off_phases = whole(data["no_recording"])
    # recording answers with row_answer instead of unrecorded_answer; both parse, score, encode
    answer_off = next(
        r["us"] for r in data["no_recording"] if r["function"].endswith("unrecorded_answer")
    )
    on_phases = off_phases - answer_off + whole(data["recording"])
    e2e = data["end_to_end_us"]
    return {
        "no_recording_phases": off_phases,
        "no_recording_overhead": e2e["off"] - off_phases,
        "recording_phases": on_phases,
        "recording_overhead": e2e["on"] - on_phases,
    }


def report(data: dict[str, Any]) -> list[str]:
    """The phase table as Markdown lines."""
    sums, e2e = totals(data), data["end_to_end_us"]
    lines = [
        f"n = {data['n']:,} single-row requests per phase; clock: {data['clock']}.",
        "",
        "| path | phase | function timed | CPU µs/request |",
        "|---|---|---|---:|",
    ]
    for path, rows in (("no recording", data["no_recording"]), ("recording", data["recording"])):
        for r in rows:
            name = f"  ↳ {r['phase']}" if r["part_of"] else f"**{r['phase']}**"
            lines.append(f"| {path} | {name} | `{r['function']}` | {r['us']:,.0f} |")
    lines.append(
        f"| no recording | **Falcon, middleware, falcon.testing** | end-to-end less the phases above | "
        f"{sums['no_recording_overhead']:,.0f} |"
    )
    split = data.get("middleware_us") or []
    for m in split:
        hooks = ", ".join(m["hooks"])
        lines.append(
            f"| no recording |   ↳ middleware {m['middleware']} | `{m['module']}.{m['middleware']}` "
            f"({hooks}) | {m['us']:,.0f} |"
        )
    if split:
        lines.append(
            "| no recording |   ↳ Falcon, falcon.testing and the resource's own lines | "
            "the row above less its middleware (clocked in a run of their own) | "
            f"{sums['no_recording_overhead'] - sum(m['us'] for m in split):,.0f} |"
        )
    lines += [
        f"| no recording | end to end | `TestClient.simulate_post` on bench.unrecorded_app | {e2e['off']:,.0f} |",
        f"| recording | **Falcon, middleware, falcon.testing** | end-to-end less the phases (parse, score, "
        f"record, answer, encode) | {sums['recording_overhead']:,.0f} |",
        f"| recording | end to end | `TestClient.simulate_post` on the product | {e2e['on']:,.0f} |",
        f"| recording | database CPU per insert | this database's backends + WAL writer (/proc) | "
        f"{data['database_us_per_insert']:,.0f} |",
        f"| floor | end to end | `TestClient.simulate_post` on bench.floor_app | {e2e['floor']:,.0f} |",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per phase")
    args = parser.parse_args()
    data = run(args.n)
    data["totals"] = totals(data)
    for line in report(data):
        print(line, file=sys.stderr)
    print(json.dumps(data))


if __name__ == "__main__":
    main()
