"""The `ledger` command line: one click group; each verb family lives in api/commands/."""

from __future__ import annotations

import click

from api.commands import (  # one line per verb family
    autopilot,
    clone,
    export,
    forget,
    health,
    keys,
    notary,
    project,
    replay,
    reproduce,
    restore,
    serve,
    state,
    train,
)


@click.group()
@click.option("--db", "database_url", envvar="LEDGER_DATABASE_URL", default=None,
              help="Database URL (default: a SQLite file under var/).")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """Provenance Ledger: record, serve and prove what machine-learning models did."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url


COMMANDS = (  # one line per verb family
    autopilot,
    replay,
    reproduce,
    keys,
    clone,
    export,
    notary,
    serve,
    forget,
    train,
    health,
    project,
    state,
    restore,
)

for module in COMMANDS:
    module.register(main)
