"""`ledger restored --from-dump NAME`: record in the ledger that it was restored from a backup."""

from __future__ import annotations

import click

from api.commands.common import open_ledger
from ledger import notary
from ledger.application import cli_actor
from ledger.domain.audits import Restore


@click.command("restored")
@click.option("--from-dump", "source", required=True, help="The backup's name (file, snapshot id).")
@click.pass_context
def restored(ctx: click.Context, source: str) -> None:
    """Record a restore: the dump's name, and the position and chain head it brought back."""
    with open_ledger(ctx) as ledger:
        position = notary.advance(ledger.engine)  # chain what the dump holds before adding to it
        _, head, _ = notary.notary_head(ledger.engine)
        ledger.save(
            Restore(
                source=source,
                restored_position=position,
                restored_head=head.hex(),
                actor=cli_actor(ledger),
            )
        )
    click.echo(
        f"recorded the restore from {source}: positions up to {position}, chain head {head.hex()}"
    )


def register(group: click.Group) -> None:
    group.add_command(restored)
