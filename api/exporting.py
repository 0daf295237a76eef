"""Compliance exports for both entry points: pin, stream, digest, sign, record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.application import Ledger
from ledger.domain.audits import Export
from ledger.errors import InvalidCommand
from ledger.notary import advance, default_key_path, issue_digest, iter_chain_rows
from ledger.timeline import iso, parse_micros, position_at, refuse_future
from projections.export import ExportRequest, PredictionExport, digest_stream, write_export

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")  # a day alone means its midnight, UTC
MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def parse_bound(text: str, name: str) -> int:
    """A date (midnight UTC) or an ISO-8601 instant with an offset, in µs."""
    text = text.strip()
    try:
        return parse_micros(f"{text}T00:00:00Z" if DATE.fullmatch(text) else text, name)
    except InvalidCommand:
        raise InvalidCommand(
            f"`{name}` must be a date (2026-01-01) or an instant with an offset", field=name
        ) from None


def pin(ledger: Ledger, start: str, end: str, fmt: str) -> ExportRequest:
    """The request pinned to the last event recorded before `end`, which must be past."""
    start_us, end_us = parse_bound(start, "from"), parse_bound(end, "to")
    refuse_future(end_us, "to")  # an export covers a period that has passed
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
    """A digest of the chain at the export's position, linked to the last one signed."""
    settings = ledger.settings
    key_path = default_key_path(settings)
    if not key_path.exists() or position == 0:
        return None
    digest = issue_digest(ledger.engine, key_path, settings.digests_dir, position=position)
    return digest.to_json()


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
