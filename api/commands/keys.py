"""`ledger keys create|revoke`: API keys from the command line."""

from __future__ import annotations

import click

from api.commands.common import open_ledger
from ledger.application import cli_actor
from ledger.domain.access import ROLES


@click.group("keys")
def keys_group() -> None:
    """Issue and revoke API keys."""


@keys_group.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--label", default="", help="A note on who holds the key.")
@click.option(
    "--expires", "expires_at", default=None, help="ISO-8601 instant after which it is refused."
)
@click.pass_context
def create(ctx: click.Context, role: str, label: str, expires_at: str | None) -> None:
    """Print a new key once; only its HMAC is stored."""
    with open_ledger(ctx) as ledger:
        key_id, key = ledger.issue_api_key(
            role=role, actor=cli_actor(ledger), label=label, expires_at=expires_at
        )
    click.echo(key)
    click.echo(f"key id {key_id} ({role})", err=True)


@keys_group.command("revoke")
@click.argument("key_id")
@click.option("--reason", default="revoked from the command line")
@click.pass_context
def revoke(ctx: click.Context, key_id: str, reason: str) -> None:
    """Revoke a key by its id."""
    with open_ledger(ctx) as ledger:
        ledger.revoke_api_key(key_id, reason=reason, actor=cli_actor(ledger))
    click.echo(f"revoked {key_id}")


def register(group: click.Group) -> None:
    group.add_command(keys_group)
