"""`ledger feeds declare|report`, `ledger quality-check FILE`, `ledger health-pass`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from api.commands.common import open_ledger
from ledger.application import cli_actor
from ledger.errors import InvalidCommand, LedgerError
from ledger.timeline import parse_past_instant
from policies.health import run_health_pass
from policies.quality_windows import check_batch
from serving.rows import checked_rows

__all__ = ["register", "run_health_pass"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> int:
    """`3600`, `90m`, `1h` or `1d` as seconds."""
    text = text.strip().lower()
    unit = UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise click.BadParameter(f"{text!r} is not a period: use seconds or 90m, 1h, 1d")
    return int(number) * (unit or 1)


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV, Parquet, JSON (a list) or JSON-lines file; missing values become None."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".ndjson"):
        text = path.read_text()
        return (
            json.loads(text)
            if suffix == ".json"
            else [json.loads(line) for line in text.splitlines() if line]
        )
    frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


@click.group("feeds")
def feeds_group() -> None:
    """Declare feeds and report what they delivered."""


@feeds_group.command("declare")
@click.argument("name")
@click.option("--expected", type=int, required=True, help="Records expected per period.")
@click.option(
    "--period", default="1h", show_default=True, help="Period length: seconds, or 90m, 1h, 1d."
)
@click.option(
    "--tolerance", type=float, default=0.1, show_default=True, help="Share either side not flagged."
)
@click.option(
    "--deployment", default=None, help="Count this deployment's predictions as received records."
)
@click.pass_context
def declare(
    ctx: click.Context,
    name: str,
    expected: int,
    period: str,
    tolerance: float,
    deployment: str | None,
) -> None:
    """Declare a feed (or change its expectation)."""
    with open_ledger(ctx) as ledger:
        feed = ledger.declare_feed(
            name, expected, seconds(period), cli_actor(ledger), tolerance, deployment
        )
    click.echo(
        f"feed {feed.name}: {feed.expected_count} per {feed.period_seconds} s ±{feed.tolerance:.0%}"
        + (f", counting predictions of {deployment}" if deployment else "")
    )


@feeds_group.command("report")
@click.argument("name")
@click.argument("count", type=int)
@click.option(
    "--period-start", default=None, help="ISO-8601 instant in the period (default: now's period)."
)
@click.pass_context
def report(ctx: click.Context, name: str, count: int, period_start: str | None) -> None:
    """Report COUNT records received on a feed."""
    with open_ledger(ctx) as ledger:
        feed = ledger.report_ingestion(
            name, count, cli_actor(ledger), period_start=period_start, source="cli"
        )
    click.echo(f"feed {feed.name}: {count} reported")


@click.command("quality-check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--deployment", required=True, help="Check against this deployment's reference profile."
)
@click.option("--batch-id", default=None, help="Names the batch (default: its content hash).")
@click.pass_context
def quality_check(ctx: click.Context, file: Path, deployment: str, batch_id: str | None) -> None:
    """Check the rows of FILE against the deployment's reference profile; the result is recorded."""
    try:
        rows = read_rows(file)
        if not isinstance(rows, list) or not rows:
            raise InvalidCommand(f"{file} holds no rows: send a list of rows", field="file")
        with open_ledger(ctx) as ledger:
            check = check_batch(
                ledger,
                deployment,
                rows,
                cli_actor(ledger),
                checker=checked_rows,
                batch_id=batch_id,
            )
    except LedgerError as error:
        raise click.ClickException(error.detail) from None
    except (OSError, ValueError) as error:  # unreadable, or not CSV / Parquet / JSON after all
        raise click.ClickException(f"cannot read {file}: {str(error).splitlines()[0]}") from None
    click.echo(
        json.dumps(
            {
                "check_id": str(check.id),
                "key": check.key,
                "rows": len(rows),
                "bad_rows": check.outliers.get("bad_rows", 0),
                "row_errors": check.outliers.get("type_errors", []),
                "outlier_share": check.outliers.get("share"),
                "failing": check.failing,
            },
            indent=2,
        )
    )


@click.command("health-pass")
@click.option(
    "--now", "now_text", default=None, help="Close periods ending by this instant (default: now)."
)
@click.option(
    "--window",
    type=int,
    default=None,
    help="Predictions per quality window (default: per deployment).",
)
@click.option(
    "--flush", is_flag=True, help="Also check the partial window of the newest predictions."
)
@click.option("--loop", is_flag=True, help="Run a pass every --interval seconds until stopped.")
@click.option(
    "--interval",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds between passes with --loop.",
)
@click.pass_context
def health_pass(
    ctx: click.Context,
    now_text: str | None,
    window: int | None,
    flush: bool,
    loop: bool,
    interval: float,
) -> None:
    """Close elapsed feed periods and check new windows of predictions (once, or --loop)."""
    now = parse_past_instant(now_text, "--now") if now_text else None
    with open_ledger(ctx) as ledger:
        while True:
            if not loop:
                click.echo(
                    json.dumps(run_health_pass(ledger, now, window=window, flush=flush), indent=2)
                )
                return
            try:
                click.echo(json.dumps(run_health_pass(ledger, now, window=window, flush=flush)))
            except LedgerError as error:  # e.g. a projector far behind: the next pass tries again
                click.echo(f"health pass skipped: {error.detail}", err=True)
            time.sleep(interval)


def register(group: click.Group) -> None:
    group.add_command(feeds_group)
    group.add_command(quality_check)
    group.add_command(health_pass)
