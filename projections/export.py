"""Compliance export: a period's predictions with their provenance, the same bytes every time.

Built from the canonical stored events (not database-specific JSON), pinned to a ledger
position, streamed a page at a time so memory stays flat however long the period.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger import log
from ledger.application import Ledger
from ledger.database import is_postgres
from ledger.domain.predictions import Prediction
from ledger.errors import InvalidCommand
from ledger.timeline import iso

FORMATS = ("csv", "jsonl", "parquet")
PAGE = 1000
COLUMNS = (
    "position",
    "recorded_at",
    "prediction_id",
    "deployment",
    "request_id",
    "caller",
    "served_model",
    "value",
    "probabilities",
    "outputs",
    "features",
    "personal_fields",
    "flags",
    "scoring",
    "policy",
    "leader",
    "model_algorithm",
    "artifact_digest",
    "training_run_id",
    "code_commit",
    "training_datasets",
    "outcome",
    "outcome_position",
    "chain_hash",
)


@dataclass(frozen=True)
class ExportRequest:
    start_us: int
    end_us: int
    position: int  # the last event recorded before `end`: what the export is pinned to
    format: str

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidCommand(f"format must be one of {', '.join(FORMATS)}", field="format")
        if self.end_us <= self.start_us:
            raise InvalidCommand("`to` must be after `from`", field="to")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class PredictionExport:
    """Rows of the export, in position order, decoded from the stored events."""

    def __init__(
        self, ledger: Ledger, request: ExportRequest, chain_hash: Callable[[int], str | None]
    ):
        self.ledger = ledger
        self.request = request
        self.chain_hash = chain_hash
        self._provenance: dict[str, dict[str, Any]] = {}

    def rows(self) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            page = self._page(last)
            if not page:
                return
            outcomes = self._outcomes([r.originator_id for r in page])
            for record in page:
                yield self._row(record, outcomes.get(record.originator_id))
            last = page[-1].position

    def _page(self, after: int) -> list[log.LogRow]:
        with self.ledger.engine.connect() as conn:
            return log.rows(
                conn,
                after=after,
                upto=self.request.position,
                classes=[Prediction.Made],
                recorded_from=self.request.start_us,
                recorded_before=self.request.end_us,
                limit=PAGE,
            )

    def _outcomes(self, originator_ids: list[Any]) -> dict[str, tuple[Any, int]]:
        """The latest outcome of each prediction as of the pinned position."""
        found: dict[str, tuple[Any, int]] = {}
        with self.ledger.engine.connect() as conn:
            rows = log.rows(
                conn,
                originators=originator_ids,
                classes=[Prediction.OutcomeRecorded],
                upto=self.request.position,
            )
        for r in rows:
            found[r.originator_id] = (log.decode(self.ledger.mapper, r).actual, r.position)
        return found

    def _row(self, record: log.LogRow, outcome: tuple[Any, int] | None) -> dict[str, Any]:
        made = log.decode(self.ledger.mapper, record)
        served = made.outputs.get(made.served_model, {})
        model = self._model_provenance(made.served_model)
        return {
            "position": record.position,
            "recorded_at": iso(record.recorded_at),
            "prediction_id": record.originator_id,
            "deployment": made.deployment,
            "request_id": made.request_id,
            "caller": made.actor,
            "served_model": made.served_model,
            "value": _canonical(served.get("value")),
            "probabilities": _canonical(served.get("probabilities")),
            "outputs": _canonical(made.outputs),
            "features": _canonical(made.features),
            "personal_fields": _canonical(sorted((made.sealed or {}).get("fields", []))),
            "flags": _canonical(made.flags),
            "scoring": _canonical(made.scoring),
            "policy": _canonical(made.policy),
            "leader": made.leader or "",
            **model,
            "outcome": _canonical(outcome[0]) if outcome else "",
            "outcome_position": outcome[1] if outcome else None,
            "chain_hash": self.chain_hash(record.position) or "",
        }

    def _model_provenance(self, model_id: str) -> dict[str, Any]:
        if model_id not in self._provenance:
            model = self.ledger.model(model_id)
            commit, datasets = "", []
            if model.training_run_id:
                run = self.ledger.training_run(model.training_run_id)
                commit = str(
                    run.code_version.get("git_commit") or run.code_version.get("commit") or ""
                )
                for role, dataset_id in sorted(run.dataset_ids.items()):
                    ds = self.ledger.dataset(dataset_id)
                    datasets.append(
                        {
                            "role": role,
                            "fingerprint": ds.fingerprint,
                            "rows": ds.rows,
                            "time_range": ds.time_range,
                        }
                    )
            self._provenance[model_id] = {
                "model_algorithm": model.algorithm,
                "artifact_digest": model.artifact_digest,
                "training_run_id": model.training_run_id or "",
                "code_commit": commit,
                "training_datasets": _canonical(datasets),
            }
        return self._provenance[model_id]


def write_export(rows: Iterator[dict[str, Any]], fmt: str) -> Iterator[bytes]:
    """Serialise rows as chunks of bytes; deterministic for the same rows."""
    if fmt == "jsonl":
        for row in rows:
            yield (_canonical(row) + "\n").encode()
    elif fmt == "csv":
        yield from _csv_chunks(rows)
    else:
        yield from _parquet_chunks(rows)


def _csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows, 1):
        writer.writerow(row)
        if i % PAGE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def parquet_schema() -> Any:
    import pyarrow as pa

    ints = {"position", "outcome_position"}
    return pa.schema([(c, pa.int64() if c in ints else pa.string()) for c in COLUMNS])


def _parquet_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _DrainableSink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd", write_statistics=True)
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == PAGE * 10:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch.clear()
            yield sink.drain()
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    writer.close()
    yield sink.drain()


class _DrainableSink(io.RawIOBase):
    """A write-only file whose bytes are handed on as they are written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def digest_stream(chunks: Iterator[bytes]) -> tuple[str, int]:
    """sha256 and size of a stream, without holding it."""
    h = hashlib.sha256()
    size = 0
    for chunk in chunks:
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def pinned_position(ledger: Ledger, end_us: int) -> int:
    from ledger.timeline import position_at

    return position_at(ledger.engine, end_us - 1)


__all__ = [
    "ExportRequest",
    "PredictionExport",
    "write_export",
    "digest_stream",
    "pinned_position",
    "FORMATS",
    "is_postgres",
]
