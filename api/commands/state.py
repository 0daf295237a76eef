"""`ledger state --as-of T`: deployments, models and performance as known at an instant."""

from __future__ import annotations

import json
from typing import Any

import click

from api.commands.common import open_ledger
from ledger import ids, log
from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.timeline import head_position, resolve_as_of
from projections.query_catalog import list_deployments, list_models
from projections.query_performance import performance
from projections.registry import ALL
from projections.runner import catch_up


@click.command("state")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="ISO-8601 instant with an offset, or pos:N (default: now).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def state(ctx: click.Context, as_of: str | None, as_json: bool) -> None:
    """Print deployments with their leaders and who set them, the model index and performance."""
    with open_ledger(ctx) as ledger:
        engine = ledger.engine
        position = resolve_as_of(engine, as_of)
        target = position if position is not None else head_position(engine)
        for cls in ALL:
            catch_up(engine, cls, target)
        answer = _state(engine, position)
        answer["history_loaded"] = _history_loads(ledger, position)
    click.echo(json.dumps(answer, indent=2, default=str) if as_json else _text(answer))


def _history_loads(ledger: Ledger, position: int | None) -> list[dict[str, Any]]:
    """Each load of historic data (History.Loaded), with the position it was recorded at."""
    try:
        loads = ledger.history(position).loads
    except NotFound:
        return []
    with ledger.engine.connect() as conn:
        rows = log.rows(conn, originators=[ids.history_id()], upto=position)
    at = {r.originator_version: r.position for r in rows}
    # a load's "version" is the aggregate's before its event, as for outcomes
    return [{**load, "position": at.get(load["version"] + 1)} for load in loads]


def _state(engine: Any, position: int | None) -> dict[str, Any]:
    deployments = list_deployments(engine, position)
    models = list_models(engine, as_of=position, limit=1000)
    perf = {d["name"]: performance(engine, d["name"], as_of=position) for d in deployments["items"]}
    return {
        "position": deployments["position"],
        "deployments": deployments["items"],
        "models": models["items"],
        "performance": perf,
    }


def _text(answer: dict[str, Any]) -> str:
    lines = [f"ledger state at position {answer['position']}"]
    for load in answer["history_loaded"]:
        clock = "a simulated clock" if load["simulated"] else "their original instants"
        lines.append(
            f"history loaded on {clock}: {load['from']} to {load['to']} for "
            f"{', '.join(load['deployments'])} by {load['loader']} (position "
            f"{load['position']}); predictions carry occurred_at, recorded_at is when it was "
            "recorded"
        )
    for d in answer["deployments"]:
        set_by = d["leader_set_by"] or {}
        lines += [
            f"\ndeployment {d['name']} ({d['task']}, policy {d['policy'].get('name')}, version {d['version']})",
            f"  leader      {d['leader'] or '-'}  set by {set_by.get('actor', '-')} at position "
            f"{set_by.get('position', '-')}: {set_by.get('reason', '')}",
            f"  challengers {', '.join(d['challengers']) or '-'}",
        ]
        for r in answer["performance"][d["name"]]["results"]:
            figures = ", ".join(f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float))
            lines.append(f"  model {r['model_id']}: {r['count']} outcomes; {figures}")
    lines.append(f"\nmodels: {len(answer['models'])}")
    for m in answer["models"]:
        roles = ", ".join(f"{k}:{v}" for k, v in m["roles"].items()) or "no deployment"
        lines.append(f"  {m['model_id']} {m['name']} ({m['algorithm']}, {m['provenance']}) {roles}")
    return "\n".join(lines)


def register(group: click.Group) -> None:
    group.add_command(state)
