"""`ledger clone --as-of T --to URL`: a production-parallel ledger loaded with history."""

from __future__ import annotations

from dataclasses import replace

import click

from api.commands.common import settings_from
from ledger.application import Ledger
from ledger.clone import clone_ledger
from ledger.timeline import head_position, iso, resolve_as_of


@click.command("clone")
@click.option("--as-of", "as_of", required=True, help="ISO-8601 instant with offset, or pos:N.")
@click.option("--to", "target_url", required=True, help="Database URL of an empty target ledger.")
@click.pass_context
def clone(ctx: click.Context, as_of: str, target_url: str) -> None:
    """Copy the events up to an instant (and the artifacts they name) into a fresh ledger."""
    settings = replace(settings_from(ctx), group_commit=False)
    source = Ledger(settings)
    target = Ledger(replace(settings, database_url=target_url))
    try:
        position = resolve_as_of(source.engine, as_of)
        total = min(position or 0, head_position(source.engine))
        with click.progressbar(length=total, label="cloning events") as bar:
            report = clone_ledger(source.engine, target.engine, position or 0, progress=bar.update)
    finally:
        source.close()
        target.close()
    at = iso(report.last_recorded_at) if report.last_recorded_at else "-"
    click.echo(
        f"cloned {report.events} events up to position {report.position} (recorded {at}) "
        f"and {report.artifacts} artifacts into {target_url}"
    )


def register(group: click.Group) -> None:
    group.add_command(clone)
