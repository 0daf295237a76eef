"""`ledger train SPEC [--deployment NAME]`: fit a spec and record its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import click

from api.commands.common import open_ledger
from ledger.application import Ledger, cli_actor
from ledger.errors import LedgerError, NotFound


@click.command("train")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--deployment",
    default=None,
    help="Add the model to this deployment (its leader if it has none, else a challenger).",
)
@click.option(
    "--create-deployment",
    is_flag=True,
    help="Create the deployment from the spec's features if it does not exist (policy manual).",
)
@click.pass_context
def train(
    ctx: click.Context, spec_path: Path, deployment: str | None, create_deployment: bool
) -> None:
    """Train the model a YAML spec describes; print its run, model and test metrics."""
    from trainers.record import train_and_record  # scikit-learn loads only for this verb
    from trainers.spec import load_spec

    try:
        spec = load_spec(spec_path)
        with open_ledger(ctx) as ledger:
            if deployment and create_deployment and _ensure_deployment(ledger, spec, deployment):
                click.echo(f"created deployment {deployment}")
            model_id = train_and_record(
                ledger,
                spec,
                cli_actor(ledger),
                deployment=deployment,
                trigger={"kind": "cli", "spec_file": str(spec_path)},
            )
            run = ledger.training_run(ledger.model(model_id).training_run_id)  # type: ignore[arg-type]
            leads = bool(deployment) and ledger.deployment(deployment).leader == model_id
    except LedgerError as error:
        raise click.ClickException(f"{error.code}: {error.detail}") from None
    click.echo(f"run     {run.id}")
    click.echo(f"model   {model_id}")
    if deployment:
        click.echo(f"joined  {deployment} as {'its leader' if leads else 'a challenger'}")
    click.echo(f"metrics {json.dumps(run.metrics, sort_keys=True)}")


def _ensure_deployment(ledger: Ledger, spec: dict, name: str) -> bool:
    """Create the deployment from the spec's features unless it exists; True when created."""
    from trainers.schema import deployment_for

    try:
        ledger.deployment(name)
    except NotFound:
        ledger.create_deployment(actor=cli_actor(ledger), **deployment_for(spec, name=name))
        return True
    return False


def register(group: click.Group) -> None:
    group.add_command(train)
