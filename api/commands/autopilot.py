"""`ledger autopilot [--config FILE] [--loop --interval S]`: automatic decisions and rebuilds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from api.commands.common import open_ledger
from ledger.application import cli_actor
from ledger.errors import LedgerError
from policies import policy_text


@click.command("autopilot")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML rules per deployment, laid over each deployment's settings.",
)
@click.option(
    "--deployment", "only", multiple=True, help="Only this deployment's rules (repeatable)."
)
@click.option("--loop", is_flag=True, help="Run a pass every --interval seconds until stopped.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds between passes with --loop.",
)
@click.option(
    "--passes", type=click.IntRange(min=1), default=None, help="With --loop: stop after this many."
)
@click.option(
    "--no-housekeeping", is_flag=True, help="Skip the health pass, best_recent and retention."
)
@click.option(
    "--save", is_flag=True, help="Store the file's rules in each deployment's settings and exit."
)
@click.option("--json", "as_json", is_flag=True, help="Print each pass's report as JSON.")
@click.pass_context
def autopilot(
    ctx: click.Context,
    config_file: Path | None,
    only: tuple[str, ...],
    loop: bool,
    interval: float,
    passes: int | None,
    no_housekeeping: bool,
    save: bool,
    as_json: bool,
) -> None:
    """One pass of every automatic decision (for cron), or --loop: health, best_recent, retention, rebuilds."""
    from policies.autopilot import config
    from policies.autopilot.passes import run_pass

    try:
        entries = config.load_file(config_file) if config_file else {}
        with open_ledger(ctx) as ledger:
            if save:
                _save(ledger, entries)
                return
            done = 0
            while True:
                report = run_pass(
                    ledger, entries, only=list(only) or None, housekeeping=not no_housekeeping
                )
                click.echo(
                    json.dumps(report.as_dict(), default=str)
                    if as_json
                    else summary(report.as_dict())
                )
                done += 1
                if not loop or (passes is not None and done >= passes):
                    return
                time.sleep(interval)
    except LedgerError as error:
        raise click.ClickException(f"{error.code}: {error.detail}") from None
    except KeyboardInterrupt:
        click.echo("autopilot stopped", err=True)


def _save(ledger: Any, entries: dict[str, dict[str, Any]]) -> None:
    """Check each entry, then record it as the deployment's `autopilot` setting."""
    from policies.autopilot.config import check

    if not entries:
        raise click.ClickException("--save needs --config FILE with deployments to store")
    for name, entry in entries.items():
        check(entry, f"deployment {name!r}")
        ledger.change_deployment(name, cli_actor(ledger), settings={"autopilot": entry})
        click.echo(f"deployment {name}: autopilot rules stored in its settings")


def summary(report: dict[str, Any]) -> str:
    """The pass as lines a person reads: housekeeping, then each deployment's rules and result."""
    lines = [f"autopilot pass at {report['started_at']} (ledger position {report['position']})"]
    lines += [f"  {step}: {_brief(step, done)}" for step, done in report["housekeeping"].items()]
    for d in report["deployments"]:
        lines.append(f"deployment {d['name']}:" + ("" if d["configured"] else f" {d['note']}"))
        lines.append(f"  policy {d['policy_text']}")
        if not d["configured"]:
            continue
        width = max(len(v["rule"]) for v in d["verdicts"])
        lines += [
            f"  {v['rule']:<{width}}  {'FIRED' if v['fired'] else '-    '}  {v['reason']}"
            for v in d["verdicts"]
        ]
        if d["model_id"]:
            lines.append(
                f"  retrained: model {d['model_id']} (run {d['training_run']}) joined as a challenger; "
                f"data {json.dumps(d['data'], default=str)}"
            )
            lines.append(
                f"  leader unchanged: the autopilot never promotes; under {d['policy']} "
                + policy_text.new_model(d["policy"])
            )
        elif d["note"]:
            lines.append(f"  {d['note']}")
        elif not d["fired"]:
            lines.append("  nothing fired: no retraining")
    return "\n".join(lines)


def _brief(step: str, done: Any) -> str:
    if isinstance(done, dict) and ("error" in done or "skipped" in done):
        return str(done.get("error") or f"skipped ({done['skipped']})")
    if step == "health":
        return f"{len(done['closed_periods'])} feed periods closed, {len(done['quality_checks'])} quality checks"
    if step == "best_recent" and done:
        return f"{len(done)} deployments decided" + "".join(
            f"\n    {name}: {_decision(d)}" for name, d in done.items()
        )
    if step == "retention":
        return f"{sum(done['forgotten'].values())} subjects forgotten" + (
            f"; refused: {done['refused']}" if done["refused"] else ""
        )
    return json.dumps(done, default=str) if done else "no deployment uses it"


def _decision(decided: dict[str, Any]) -> str:
    """One best_recent decision: promoted, or unchanged and why."""
    if "error" in decided:
        return str(decided["error"])
    if decided.get("changed"):
        return f"promoted {decided['model_id']} over {decided['previous']}: {decided['reason']}"
    return f"unchanged ({decided.get('why')}): {decided.get('reason')}"


def register(group: click.Group) -> None:
    group.add_command(autopilot)
