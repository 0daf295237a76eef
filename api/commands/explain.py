"""`ledger explain PREDICTION_ID`: why the served model gave this value, feature by feature."""

from __future__ import annotations

import json

import click

from api.commands.common import open_ledger
from ledger.application import cli_actor
from ledger.timeline import resolve_as_of
from serving.explain import explain_and_record


@click.command("explain")
@click.argument("prediction_id")
@click.option("--as-of", "as_of", default=None, help="ISO-8601 instant with offset, or pos:N.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole explanation as JSON.")
@click.pass_context
def explain(ctx: click.Context, prediction_id: str, as_of: str | None, as_json: bool) -> None:
    """Exact per-feature contributions to the served model's output (recorded as given)."""
    with open_ledger(ctx) as ledger:
        position = resolve_as_of(ledger.engine, as_of)
        answer = explain_and_record(ledger, prediction_id, cli_actor(ledger), position)
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True, default=str))
        return
    method = answer["method"]
    click.echo(
        f"prediction {answer['prediction_id']}, model {answer['model_id']} "
        f"({answer['model_type']}), in {answer['unit']}"
    )
    click.echo(f"  {method['library']} {method['explainer']} ({method['perturbation']})")
    click.echo(f"  background: {answer['background']['source']}")
    click.echo(f"  base value {answer['base_value']:.6g} -> output {answer['output']:.6g}")
    for c in answer["contributions"]:
        click.echo(f"  {c['contribution']:+.6g}  {c['feature']}")
    for reason in answer["summary"]:
        click.echo(f"  {reason}")


def register(group: click.Group) -> None:
    group.add_command(explain)
