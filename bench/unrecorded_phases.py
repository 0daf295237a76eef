"""CPU per single-row prediction without recording, in-process, split by phase.

    .venv/bin/python -m bench.unrecorded_phases [--n 3000] [--backend sqlite|postgres] [--profile N]

The demo's churn deployment (its two trained models) behind bench/unrecorded_app.py's app,
called as gunicorn calls it (one WSGI environ per request, no test client in between). The
runtime's version probe is left out: `deployment_check_seconds` is an hour, so every
request takes the cached runtime, and what is measured is the request's own work.

Each phase is timed on its own, in a loop over the same request (CPU, `time.process_time`):
the JSON parse, the request schema, the runtime lookup, the row schema, each model's matrix
and scorer, the flags, the answer and its dump through the route's schema, and the JSON
encoding. `falcon + middleware` is the whole request less the phases. Prints one line per
figure and one JSON document on the last line (for bench/revisions.py).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from api import json_body
from api.answers import declared, dump
from api.app import LedgerApp
from api.demo import create_deployment, specs_by_deployment
from api.observability import configure_logging
from api.routes import route_for
from bench.common import create_postgres_database, drop_postgres_database
from bench.unrecorded_app import PREDICTIONS, create_unrecorded_app
from ledger.application import Ledger
from ledger.settings import Settings
from serving import predict
from serving.flags import row_flags
from serving.scoring import score_model
from tests.e2e.server import EXAMPLE_ROW
from trainers.matrix import rows_to_matrix

PATH = "/v1/deployments/churn/predictions"


def prepared(url: str, home: Path) -> tuple[LedgerApp, str]:
    """The unrecorded app on a database holding the demo's churn deployment, and a predictor key."""
    settings = Settings(home=home, database_url=url, deployment_check_seconds=3600.0)
    ledger = Ledger(replace(settings, group_commit=False))
    try:
        create_deployment(ledger, "churn", specs_by_deployment()["churn"])
        key = ledger.issue_api_key(role="predictor", actor="bench").key
    finally:
        ledger.close()
    return create_unrecorded_app(settings), key


def environ(key: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def bodies(n: int) -> list[bytes]:
    return [orjson.dumps({"request_id": f"bench-{i}", "features": EXAMPLE_ROW}) for i in range(n)]


def request(app: LedgerApp, key: str) -> Callable[[bytes], None]:
    statuses = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        statuses.append(status)

    def call(body: bytes) -> None:
        statuses.clear()
        b"".join(app(environ(key, body), start_response))
        if not statuses[0].startswith("201"):
            raise RuntimeError(f"the app answered {statuses[0]}")

    return call


def per_call(n: int, work: Callable[[int], Any]) -> float:
    """CPU milliseconds per call of work(i), i in range(n)."""
    started = time.process_time()
    for i in range(n):
        work(i)
    return 1000 * (time.process_time() - started) / n


def phases(app: LedgerApp, key: str, n: int) -> dict[str, float]:
    serving = app.services.serving
    texts = bodies(n)
    post = request(app, key)
    for text in texts[:200]:
        post(text)  # warm: runtime, row schema, key cache, answer schemas
    parsed = [json_body.loads(t) for t in texts]
    loaded = [predict.REQUEST_SCHEMA.load(b) for b in parsed]
    runtime = serving.scorer.runtime("churn")
    rows = predict.validate_rows(serving, runtime, [loaded[0]["features"]], False)
    scored = predict.score_request(serving, "churn", parsed[0])
    answer = predict.unrecorded_answer(scored)
    route = route_for("POST", PREDICTIONS)
    assert route is not None
    shape = route.answers[201].shape if declared(route.answers[201]) else None
    out: dict[str, float] = {}
    out["end_to_end"] = per_call(n, lambda i: post(texts[i]))
    out["json_parse"] = per_call(n, lambda i: json_body.loads(texts[i]))
    out["request_schema"] = per_call(
        n,
        lambda i: (
            predict.check_batch_size(parsed[i], 1000),
            predict.REQUEST_SCHEMA.load(parsed[i]),
        ),
    )
    out["runtime"] = per_call(n, lambda i: serving.scorer.runtime("churn"))
    out["row_schema"] = per_call(
        n,
        lambda i: predict.validate_rows(serving, runtime, [loaded[i]["features"]], False),
    )
    for model in runtime.models:
        label = model.model_id[:8]
        out[f"matrix {label}"] = per_call(n, lambda i, m=model: rows_to_matrix(rows, m.columns))
        out[f"score {label}"] = per_call(n, lambda i, m=model: score_model(m, rows))
    out["flags"] = per_call(n, lambda i: row_flags(runtime.profile, rows[0]))
    out["scorer_total"] = per_call(n, lambda i: serving.scorer.score(runtime, rows))
    out["answer"] = per_call(n, lambda i: predict.unrecorded_answer(scored))
    # AnswerMiddleware dumps through the route's schema only an answer it declares
    out["answer_dump"] = per_call(n, lambda i: dump(shape, answer)) if shape else 0.0
    out["json_dump"] = per_call(n, lambda i: orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS))
    models = sum(v for k, v in out.items() if k.startswith("score "))
    out["scorer_rest (vote, flags, RowScore)"] = out["scorer_total"] - models
    inside = sum(
        out[k]
        for k in (
            "json_parse",
            "request_schema",
            "runtime",
            "row_schema",
            "scorer_total",
            "answer",
            "answer_dump",
            "json_dump",
        )
    )
    out["falcon + middleware (the rest)"] = out["end_to_end"] - inside
    return out


def profiled(app: LedgerApp, key: str, n: int) -> str:
    post, texts = request(app, key), bodies(n)
    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        post(text)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(60)
    return stream.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        # As under gunicorn: JSON log lines on stderr (here a file), multiprocess metrics.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(home / "metrics")
        (home / "metrics").mkdir()
        terminal, sys.stderr = sys.stderr, (home / "server.log").open("w")
        configure_logging()
        url = (
            f"sqlite:///{home}/ledger.db"
            if args.backend == "sqlite"
            else create_postgres_database("ledger_bench_phases")
        )
        app = None
        try:
            app, key = prepared(url, home)
            if args.profile:
                print(profiled(app, key, args.profile))
            result = phases(app, key, args.n)
        finally:
            if app is not None:
                app.services.close()
            if args.backend == "postgres":
                drop_postgres_database(url)
            sys.stderr.close()
            sys.stderr = terminal
    for name, ms in result.items():
        print(f"{name}: {ms:.4f} ms")
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
