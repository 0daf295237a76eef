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
@click.option(
    "--deployment", default=None, help="Only this deployment's data (default: everywhere)."
)
@click.pass_context
def forget(ctx: click.Context, subject: str, reason: str, deployment: str | None) -> None:
    """Record SubjectForgotten and destroy the subject's keys; print what was done as JSON."""
    with open_ledger(ctx) as ledger:
        try:
            result = ledger.forget_subject(
                subject, reason=reason, actor=cli_actor(ledger), deployment=deployment
            )
            ledger.sealer.keys.purge()  # an operator's erasure: make the key row physically go now
        except LedgerError as error:
            raise click.ClickException(error.detail) from error
    click.echo(json.dumps(result.as_dict(), indent=2))
    if result.already_forgotten:
        click.echo("already forgotten: nothing new was recorded", err=True)
    elif result.models:
        click.echo(
            f"{len(result.models)} model(s) learned from this subject's rows and may hold "
            "its values: retrain them without it (docs/PRIVACY.md)",
            err=True,
        )


@click.group("retention")
def retention_group() -> None:
    """Forget a deployment's subjects N days after their last prediction (policies/retention.py)."""


@retention_group.command("set")
@click.argument("deployment")
@click.option("--days", type=int, required=True, help="Days after a subject's last prediction.")
@click.option(
    "--override-reason",
    default=None,
    help="Required below the 183-day legal floor; recorded with the change.",
)
@click.pass_context
def retention_set(
    ctx: click.Context, deployment: str, days: int, override_reason: str | None
) -> None:
    """Record the deployment's retention (a settings change with its actor)."""
    from policies.retention import set_retention

    with open_ledger(ctx) as ledger:
        try:
            retention = set_retention(ledger, deployment, days, cli_actor(ledger), override_reason)
        except LedgerError as error:
            raise click.ClickException(error.detail) from error
    click.echo(json.dumps({"deployment": deployment, **retention}, indent=2))


@retention_group.command("run")
@click.pass_context
def retention_run(ctx: click.Context) -> None:
    """Apply every deployment's retention now (what `ledger autopilot` runs)."""
    from policies.retention import run_retention

    with open_ledger(ctx) as ledger:
        report = run_retention(ledger)
    click.echo(
        json.dumps(
            {
                "forgotten": {
                    name: [r.subject_ref for r in results]
                    for name, results in report.forgotten.items()
                },
                "refused": report.refused,
            },
            indent=2,
        )
    )


def register(group: click.Group) -> None:
    group.add_command(forget)
    group.add_command(retention_group)
