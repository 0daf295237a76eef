"""The compliance export of predictions over a closed period."""

from __future__ import annotations

from api.routes.table import AUDITOR, JSON, Answer, Param, Route, roles
from api.schemas.queries import ExportManifestSchema

FILE_TYPES = ("text/csv", "application/x-ndjson", "application/vnd.apache.parquet")


def bound(name: str, what: str) -> Param:
    return Param(
        name,
        what + ": a date (midnight UTC) or an instant with an offset",
        format="date-or-date-time",
        required=True,
    )


ROUTES = (
    Route(
        "GET",
        "/v1/exports/predictions",
        roles(AUDITOR),
        "Compliance export, streamed, or its manifest",
        "exports",
        {
            200: Answer(
                "the file (csv, jsonl or parquet), or with manifest=true its digests as JSON",
                ExportManifestSchema,
                media=(*FILE_TYPES, JSON),
            )
        },
        query=(
            bound("from", "the period's start"),
            bound("to", "the period's end (past)"),
            Param("format", "the file's format", enum=("csv", "jsonl", "parquet"), default="csv"),
            Param(
                "manifest",
                "answer the digests and a signed chain digest instead",
                type="boolean",
                default=False,
            ),
        ),
    ),
)
