"""`ledger export --from --to --format`: a period's predictions with provenance and a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import click

from api import exporting
from api.commands.common import open_ledger
from ledger.application import cli_actor


@click.command("export")
@click.option(
    "--from", "start", required=True, help="A date (2026-01-01) or an instant with an offset."
)
@click.option(
    "--to", "end", required=True, help="Exclusive end, a date or an instant with an offset."
)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="parquet")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("exports")
)
@click.pass_context
def export(ctx: click.Context, start: str, end: str, fmt: str, out: Path) -> None:
    """Write the file and its manifest (sha256, pinned position, signed digest); record the export."""
    with open_ledger(ctx) as ledger:
        request = exporting.pin(ledger, start, end, fmt)
        result = exporting.export_to_directory(ledger, request, out, cli_actor(ledger))
    click.echo(json.dumps(result, indent=2, sort_keys=True))


def register(group: click.Group) -> None:
    group.add_command(export)
