"""`ledger reproduce PREDICTION_ID`: score a recorded prediction again and compare, bit for bit."""

from __future__ import annotations

import json
import sys

import click

from api.commands.common import open_ledger
from serving.reproduce import reproduce as reproduce_prediction


@click.command("reproduce")
@click.argument("prediction_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full comparison as JSON.")
@click.pass_context
def reproduce(ctx: click.Context, prediction_id: str, as_json: bool) -> None:
    """Load the recorded artifacts and features, score them as the original did, compare."""
    with open_ledger(ctx) as ledger:
        result = reproduce_prediction(ledger, prediction_id)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        how = result.scoring.get("mode", "single")
        if how == "batch":
            how = f"row {result.scoring['row']} of batch {result.scoring['batch_id']!r} ({result.scoring['rows']} rows)"
        click.echo(f"prediction {result.prediction_id}, scored {how}")
        for check in result.checks:
            verdict = "identical" if check.identical else "DIFFERENT"
            click.echo(
                f"  model {check.model_id} (artifact {check.artifact_digest[:12]}…): {verdict}"
            )
            if not check.identical:
                click.echo(f"    recorded:   {json.dumps(check.recorded, sort_keys=True)}")
                click.echo(f"    reproduced: {json.dumps(check.reproduced, sort_keys=True)}")
        for name, (before, now) in result.version_changes.items():
            click.echo(f"  {name} was {before} at training, is {now} now")
    if not result.identical:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(reproduce)
