"""Traffic replay: historic requests sent into a running service at their original cadence.

The source is either a ledger (the prediction requests recorded between two instants,
with their outcomes later at their original delays, each under its outcome id) or a
CSV/Parquet file with a time column (a continuous upload of data), optionally with a label
column sent later as outcomes. The source is only read; nothing is recorded in it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ledger import log
from ledger.application import Ledger
from ledger.domain.access import OCCURRED_AT_FIELD
from ledger.domain.predictions import OCCURRED_AT, Prediction
from ledger.errors import InvalidCommand
from ledger.timeline import iso

PAGE = 2000

# (method, path, body) -> (status, parsed JSON body)
Send = Callable[[str, str, Any], tuple[int, Any]]


@dataclass
class Request:
    """One request to send, `at` µs after the first one."""

    at: int
    position: int
    path: str
    body: Any
    kind: str  # "prediction" | "outcome"
    occurred_at: int | None = None  # µs: when the recorded request originally occurred


@dataclass
class ReplayStats:
    sent: int = 0
    failed: int = 0
    skipped_erased: int = 0
    last_position: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def ledger_requests(
    source: Ledger, after: int, until: int, outcomes: bool = True, instants: bool = False
) -> Iterator[Request]:
    """The requests recorded in (after, until], and outcomes of those predictions recorded later.

    With `instants` each prediction request carries the instant it originally occurred at
    (`occurred_at`: its own historic instant if it was loaded with one, else when the source
    recorded it), which the target takes only from a key granted load-history.
    """
    requests = _ledger_requests(source, after, until, outcomes)
    return (with_instant(r) for r in requests) if instants else requests


def with_instant(request: Request) -> Request:
    """The request with its original instant in the body, for a target that keeps it."""
    if request.kind != "prediction" or request.body is None or request.occurred_at is None:
        return request
    body = {**request.body, OCCURRED_AT_FIELD: iso(request.occurred_at)}
    return replace(request, body=body)


def _ledger_requests(source: Ledger, after: int, until: int, outcomes: bool) -> Iterator[Request]:
    replayed: set[Any] = set()
    first_at: int | None = None
    pending_batch: list[tuple[int, int, Any]] = []
    for position, recorded_at, event in _events(source, after, None if outcomes else until):
        if first_at is None:
            first_at = recorded_at
        if isinstance(event, source_made_class()) and position <= until:
            if pending_batch and not _same_batch(pending_batch[-1], recorded_at, event):
                yield _batch_request(source, pending_batch, first_at)
                pending_batch = []
            if event.scoring.get("mode") == "batch":
                pending_batch.append((position, recorded_at, event))
            else:
                yield from _single_request(source, position, recorded_at, event, first_at)
            replayed.add(event.originator_id)
        elif event.originator_id in replayed and not isinstance(event, source_made_class()):
            if pending_batch:
                yield _batch_request(source, pending_batch, first_at)
                pending_batch = []
            deployment, request_id = _prediction_key(source, event.originator_id)
            yield Request(
                recorded_at - first_at,
                position,
                "/v1/outcomes",
                {
                    "deployment": deployment,
                    "request_id": request_id,
                    "actual": event.actual,
                    "observed_at": event.observed_at,
                    "outcome_id": replayed_outcome_id(event),
                },
                "outcome",
            )
    if pending_batch:
        yield _batch_request(source, pending_batch, first_at or 0)


def replayed_outcome_id(event: Any) -> str:
    """The outcome's own id, else one derived from its event: replaying again records nothing."""
    return event.outcome_id or f"replay:{event.originator_id}:{event.originator_version}"


def source_made_class() -> type:
    from ledger.domain.predictions import Prediction

    return Prediction.Made


def _events(source: Ledger, after: int, until: int | None) -> Iterator[tuple[int, int, Any]]:
    last = after
    classes = [Prediction.Made, Prediction.OutcomeRecorded]
    while True:
        with source.engine.connect() as conn:
            rows = log.rows(conn, after=last, upto=until, classes=classes, limit=PAGE)
        if not rows:
            return
        for r in rows:
            yield r.position, r.recorded_at, log.decode(source.mapper, r)
        last = rows[-1].position


def _features(source: Ledger, event: Any) -> dict[str, Any] | None:
    if not event.sealed:
        return dict(event.features)
    shown = source.sealer.display(event.features, event.sealed, event.originator_id)
    if any(shown.get(f) == "erased" for f in event.sealed.get("fields", [])):
        return None  # the subject was forgotten: this request cannot be sent again
    return shown


def _single_request(
    source: Ledger, position: int, at: int, event: Any, first: int
) -> Iterator[Request]:
    features = _features(source, event)
    body = None if features is None else {"features": features, "request_id": event.request_id}
    yield Request(
        at - first,
        position,
        f"/v1/deployments/{event.deployment}/predictions",
        body,
        "prediction",
        event.scoring.get(OCCURRED_AT, at),
    )


def _same_batch(previous: tuple[int, int, Any], recorded_at: int, event: Any) -> bool:
    _, at, other = previous
    return (
        at == recorded_at
        and other.deployment == event.deployment
        and other.scoring.get("batch_id") == event.scoring.get("batch_id")
    )


def _batch_request(source: Ledger, members: list[tuple[int, int, Any]], first: int) -> Request:
    position, at, head = members[-1][0], members[0][1], members[0][2]
    batch_id = head.scoring["batch_id"]
    instances = []
    for _, _, event in sorted(members, key=lambda m: m[2].scoring["row"]):
        features = _features(source, event)
        if features is None:
            continue
        own = None if event.request_id == f"{batch_id}#{event.scoring['row']}" else event.request_id
        instances.append({**features, **({"request_id": own} if own else {})})
    body = {"instances": instances, "request_id": batch_id} if instances else None
    return Request(
        at - first,
        position,
        f"/v1/deployments/{head.deployment}/predictions",
        body,
        "prediction",
        head.scoring.get(OCCURRED_AT, at),
    )


def _prediction_key(source: Ledger, prediction_id: Any) -> tuple[str, str]:
    prediction = source.prediction(prediction_id)
    return prediction.deployment, prediction.request_id


@dataclass
class FileColumns:
    """What each column of a replayed file is: its time, its label and when that was known."""

    time: str
    label: str | None = None
    label_time: str | None = None

    def known(self) -> set[str]:
        return {c for c in (self.time, self.label, self.label_time) if c}


def read_file(path: Path, columns: FileColumns) -> Any:
    """The file's rows (a DataFrame), refused if a column named by an option is missing."""
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    for option, name in (
        ("--time-column", columns.time),
        ("--label", columns.label),
        ("--label-time-column", columns.label_time),
    ):
        if name and name not in frame.columns:
            raise InvalidCommand(
                f"{option} {name!r} is not a column of {path.name}; its columns: "
                f"{', '.join(map(str, frame.columns))}",
                field=option.lstrip("-"),
            )
    return frame


def check_file_columns(frame: Any, columns: FileColumns, schema: dict[str, Any]) -> None:
    """Refuse, before anything is sent, columns the deployment's input schema does not declare."""
    declared = {f["name"] for f in schema["features"]}
    unknown = [str(c) for c in frame.columns if c not in declared and c not in columns.known()]
    if unknown:
        raise InvalidCommand(
            f"columns not in the deployment's input schema: {', '.join(unknown)}; "
            "drop them, or name the label with --label",
            field="columns",
            columns=unknown,
        )


def deployment_schema(send: Send, deployment: str) -> dict[str, Any]:
    """The target service's input schema for the deployment (read before anything is sent)."""
    status, body = send("GET", f"/v1/deployments/{deployment}", None)
    if status != 200:
        detail = body.get("detail") if isinstance(body, dict) else body
        raise InvalidCommand(
            f"the target cannot give deployment {deployment!r}'s schema ({status}): {detail}",
            field="deployment",
        )
    return dict(body["schema"])


def file_requests(
    frame: Any, name: str, deployment: str, columns: FileColumns, skip: int = 0
) -> Iterator[Request]:
    """Rows as single predictions paced by their time column, each label later as an outcome.

    A label is sent at its row's time plus its recorded delay (`label_time`; none: right
    after the prediction), under an outcome id derived from the row, so a second replay
    records nothing again. Positions count the requests in the order sent; `skip` resumes.
    """
    import pandas as pd

    frame = frame.assign(_t=pd.to_datetime(frame[columns.time], utc=True))
    frame = frame.sort_values("_t", kind="stable").reset_index(drop=True)
    features = [c for c in frame.columns if c not in columns.known() and c != "_t"]
    requests: list[Request] = []
    for index, row in frame.iterrows():
        at = _micros(row["_t"] - frame["_t"].iloc[0])
        request_id = f"replay:{name}:{index}"
        path = f"/v1/deployments/{deployment}/predictions"
        body = {"features": {c: _plain(row[c]) for c in features}, "request_id": request_id}
        occurred = _micros(row["_t"] - pd.Timestamp(0, tz="UTC"))
        requests.append(Request(at, 0, path, body, "prediction", occurred))
        actual = _plain(row[columns.label]) if columns.label else None
        if actual is not None:
            requests.append(_label(deployment, request_id, actual, at, row, columns))
    requests.sort(key=lambda r: r.at)  # stable: a row's outcome never precedes its prediction
    rebase = requests[skip].at if skip < len(requests) else 0
    for ordinal, request in enumerate(requests[skip:], start=skip + 1):
        yield replace(request, at=request.at - rebase, position=ordinal)


def _label(
    deployment: str, request_id: str, actual: Any, at: int, row: Any, columns: FileColumns
) -> Request:
    import pandas as pd

    body = {
        "deployment": deployment,
        "request_id": request_id,
        "actual": actual,
        "outcome_id": f"{request_id}:{columns.label}",
    }
    delay = 0
    if columns.label_time and not pd.isna(row[columns.label_time]):
        known = pd.to_datetime(row[columns.label_time], utc=True)
        delay = max(0, _micros(known - row["_t"]))
        body["observed_at"] = known.isoformat()
    return Request(at + delay, 0, "/v1/outcomes", body, "outcome")


def _micros(delta: Any) -> int:
    return int(delta.total_seconds() * 1_000_000)


def _plain(value: Any) -> Any:
    import math

    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def replay(
    requests: Iterator[Request],
    send: Send,
    speed: float = 1.0,
    max_rate: float | None = None,
    progress: Callable[[Request], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayStats:
    """Send each request at its original offset divided by `speed` (0: as fast as taken)."""
    stats = ReplayStats()
    start = clock()
    last_sent = 0.0
    for request in requests:
        if request.body is None:
            stats.skipped_erased += 1
            continue
        due = start + (request.at / 1_000_000 / speed if speed > 0 else 0)
        if max_rate:
            due = max(due, last_sent + 1 / max_rate)
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        last_sent = clock()
        status, _ = send("POST", request.path, request.body)
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        stats.sent += 1
        stats.failed += status >= 400
        stats.last_position = request.position
        if progress:
            progress(request)
    return stats


def http_sender(base_url: str, key: str, timeout: float = 30.0) -> Send:
    """POST JSON to a running service with a predictor key (urllib; loopback in tests)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidCommand(
            f"target {base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:8001",
            field="target",
        )

    def send(method: str, path: str, body: Any) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            base_url.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as answer:
                    return answer.status, json.loads(answer.read() or b"null")
            except urllib.error.HTTPError as error:
                if error.code in (429, 503) and attempt < 4:
                    time.sleep(float(error.headers.get("Retry-After", 1)))
                    continue
                return error.code, json.loads(error.read() or b"null")
        return 503, None

    return send
