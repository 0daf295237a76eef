"""Compliance exports for both entry points: pin, stream, digest, sign, record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import log
from ledger.application import Ledger
from ledger.domain.audits import Export
from ledger.errors import InvalidCommand
from ledger.notary import advance, default_key_path, iter_chain_rows, sign_digest
from ledger.notary.signing import load_private_key
from ledger.timeline import iso, position_at, to_micros
from projections.export import ExportRequest, PredictionExport, digest_stream, write_export

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def parse_bound(text: str, name: str) -> int:
    """A date (midnight UTC) or an ISO-8601 instant with an offset, in µs."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidCommand(
            f"`{name}` must be a date (2026-01-01) or an instant with an offset", field=name
        ) from None
    if value.tzinfo is None:
        if len(text.strip()) > 10:
            raise InvalidCommand(f"`{name}` needs an offset, e.g. 2026-01-01T00:00:00Z", field=name)
        value = value.replace(tzinfo=UTC)
    return to_micros(value)


def pin(ledger: Ledger, start: str, end: str, fmt: str) -> ExportRequest:
    """The request pinned to the last event recorded before `end`, which must be past."""
    start_us, end_us = parse_bound(start, "from"), parse_bound(end, "to")
    if end_us > to_micros(datetime.now(UTC)):
        raise InvalidCommand("`to` is in the future: an export covers a closed period", field="to")
    return ExportRequest(start_us, end_us, position_at(ledger.engine, end_us - 1), fmt)


def _chain_hashes(ledger: Ledger, request: ExportRequest) -> Any:
    advance(ledger.engine)

    def chain_hash(position: int) -> str | None:
        for _, _, head in iter_chain_rows(ledger.engine, position, position):
            return head.hex()
        return None

    return chain_hash


def stream(ledger: Ledger, request: ExportRequest) -> Iterator[bytes]:
    """The export file's bytes, a chunk at a time."""
    rows = PredictionExport(ledger, request, _chain_hashes(ledger, request)).rows()
    return write_export(rows, request.format)


def file_name(request: ExportRequest) -> str:
    start, end = iso(request.start_us)[:10], iso(request.end_us)[:10]
    return f"predictions_{start}_{end}_pos{request.position}.{EXTENSIONS[request.format]}"


def manifest(ledger: Ledger, request: ExportRequest, sha256: str, size: int) -> dict[str, Any]:
    """Each file's sha256, the pinned position and a signed digest of the chain there."""
    return {
        "export": "predictions",
        "from": iso(request.start_us),
        "to": iso(request.end_us),
        "format": request.format,
        "position": request.position,
        "files": [{"name": file_name(request), "sha256": sha256, "bytes": size}],
        "digest": _signed_digest(ledger, request.position),
    }


def _signed_digest(ledger: Ledger, position: int) -> dict[str, Any] | None:
    key_path = default_key_path(ledger.settings)
    if not key_path.exists() or position == 0:
        return None
    rows = list(iter_chain_rows(ledger.engine, position, position))
    if not rows:
        return None
    with ledger.engine.connect() as conn:
        recorded_at = log.time_of(conn, position)
    return sign_digest(load_private_key(key_path), position, rows[0][2], recorded_at).to_json()


def record(ledger: Ledger, request: ExportRequest, actor: str, files: list[dict[str, Any]]) -> None:
    """Who exported what, pinned where: an audit event of its own."""
    ledger.save(
        Export(
            kind="predictions",
            params={
                "from": iso(request.start_us),
                "to": iso(request.end_us),
                "format": request.format,
            },
            position=request.position,
            files=files,
            actor=actor,
        )
    )


def export_to_directory(
    ledger: Ledger, request: ExportRequest, out: Path, actor: str
) -> dict[str, Any]:
    """Write the file and manifest.json into `out`; record the export."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / file_name(request)
    with path.open("wb") as handle:
        sha, size = digest_stream(_tee(stream(ledger, request), handle))
    result = manifest(ledger, request, sha, size)
    import json

    (out / "manifest.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    record(ledger, request, actor, result["files"])
    return result


def _tee(chunks: Iterator[bytes], handle: Any) -> Iterator[bytes]:
    for chunk in chunks:
        handle.write(chunk)
        yield chunk
