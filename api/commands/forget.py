"""`ledger forget SUBJECT --reason ...`: erase a subject's personal data (crypto-shredding)."""

from __future__ import annotations

import json

import click

from api.commands.common import open_ledger
from ledger.application import cli_actor
from ledger.errors import LedgerError


@click.command("forget")
@click.argument("subject")
@click.option("--reason", required=True, help="Why: e.g. the erasure request's reference.")
@click.option("--deployment", default=None, help="Only this deployment's data (default: everywhere).")
@click.pass_context
def forget(ctx: click.Context, subject: str, reason: str, deployment: str | None) -> None:
    """Record SubjectForgotten and destroy the subject's keys; print what was done as JSON."""
    with open_ledger(ctx) as ledger:
        try:
            result = ledger.forget_subject(subject, reason=reason, actor=cli_actor(), deployment=deployment)
            ledger.sealer.keys.purge()  # an operator's erasure: make the key row physically go now
        except LedgerError as error:
            raise click.ClickException(error.detail) from error
    click.echo(json.dumps(result.as_dict(), indent=2))
    if result.already_forgotten:
        click.echo("already forgotten: nothing new was recorded", err=True)
    elif result.models:
        click.echo(f"{len(result.models)} model(s) learned from this subject's rows and may hold "
                   "its values: retrain them without it (docs/PRIVACY.md)", err=True)


def register(group: click.Group) -> None:
    group.add_command(forget)
