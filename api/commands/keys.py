"""`ledger keys create|revoke` (API keys) and `ledger master-key rotate` from the command line."""

from __future__ import annotations

import click

from api.commands.common import open_ledger, settings_from
from ledger.application import cli_actor
from ledger.domain.access import CAPABILITIES, ROLES


@click.group("keys")
def keys_group() -> None:
    """Issue and revoke API keys."""


@keys_group.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--label", default="", help="A note on who holds the key.")
@click.option(
    "--expires", "expires_at", default=None, help="ISO-8601 instant after which it is refused."
)
@click.option(
    "--client",
    default=None,
    help="The client the key acts for; an existing client's name rotates its key. "
    "Default: the key is its own client.",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    metavar="DEPLOYMENT:CAPABILITY",
    help=f"Repeatable; capability one of {', '.join(CAPABILITIES)}.",
)
@click.pass_context
def create(
    ctx: click.Context,
    role: str,
    label: str,
    expires_at: str | None,
    client: str | None,
    grants: tuple[str, ...],
) -> None:
    """Print a new key once; only its HMAC is stored."""
    with open_ledger(ctx) as ledger:
        key_id, key = ledger.issue_api_key(
            role=role,
            actor=cli_actor(ledger),
            label=label,
            expires_at=expires_at,
            client=client,
            grants=grants,
        )
        issued = ledger.api_key(key_id)
    click.echo(key)
    granted = f"; grants {', '.join(issued.grants)}" if issued.grants else ""
    click.echo(f"key id {key_id} ({role}) of client {issued.client}{granted}", err=True)


@keys_group.command("revoke")
@click.argument("key_id")
@click.option("--reason", default="revoked from the command line")
@click.pass_context
def revoke(ctx: click.Context, key_id: str, reason: str) -> None:
    """Revoke a key by its id."""
    with open_ledger(ctx) as ledger:
        ledger.revoke_api_key(key_id, reason=reason, actor=cli_actor(ledger))
    click.echo(f"revoked {key_id}")


@click.group("master-key")
def master_key_group() -> None:
    """Rotate the master key that wraps subject keys (docs/PRIVACY.md)."""


@master_key_group.command("rotate")
@click.option(
    "--prepare",
    is_flag=True,
    help="Only make the next key; restart the API so it wraps under it, then rotate.",
)
@click.pass_context
def rotate(ctx: click.Context, prepare: bool) -> None:
    """Re-wrap every subject key under a new master key; events are not touched."""
    from ledger.errors import LedgerError
    from ledger.privacy.rotation import prepare_next_key, rotate_master_key

    settings = settings_from(ctx)
    try:
        if prepare:
            made = prepare_next_key(settings)
            click.echo(f"next master key: {made or 'already there'}")
            return
        with open_ledger(ctx) as ledger:
            done = rotate_master_key(ledger.engine, ledger.settings)
    except LedgerError as error:
        raise click.ClickException(error.detail) from error
    click.echo(f"re-wrapped {done.rewrapped} subject key(s) under the new master key")
    if not done.promoted:
        click.echo(
            "set LEDGER_MASTER_KEY to the value of LEDGER_NEXT_MASTER_KEY, unset "
            "LEDGER_NEXT_MASTER_KEY, restart; then destroy the old key",
            err=True,
        )
    else:
        click.echo("master.key now holds the new key: restart the API processes", err=True)


def register(group: click.Group) -> None:
    group.add_command(keys_group)
    group.add_command(master_key_group)
