"""`ledger replay` and `ledger compare`: historic traffic into a parallel service, and the verdict."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from api.commands.common import settings_from
from api.replay import (
    FileColumns,
    check_file_columns,
    deployment_schema,
    file_requests,
    http_sender,
    ledger_requests,
    read_file,
    replay,
    with_instant,
)
from ledger.application import Ledger
from ledger.timeline import head_position, resolve_as_of
from projections.compare import compare as compare_ledgers


@click.command("replay")
@click.option(
    "--target",
    required=True,
    help="Base URL of the service to replay into, e.g. http://127.0.0.1:8001",
)
@click.option(
    "--key",
    default=None,
    help="A predictor key of the target service (default: LEDGER_REPLAY_KEY).",
)
@click.option(
    "--from", "start", default=None, help="Replay requests recorded after this instant (or pos:N)."
)
@click.option(
    "--to", "end", default=None, help="... and up to this instant (or pos:N); default: now."
)
@click.option(
    "--file",
    "data_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Replay a CSV/Parquet file instead of the ledger's recorded requests.",
)
@click.option("--deployment", default=None, help="With --file: the deployment to send rows to.")
@click.option(
    "--time-column", default="event_time", show_default=True, help="With --file: the time column."
)
@click.option(
    "--label",
    default=None,
    help="With --file: the column holding each row's actual value, sent later as an outcome.",
)
@click.option(
    "--label-time-column",
    default=None,
    help="With --label: when each label became known; its delay after the row is kept.",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Cadence multiplier; 0 = as fast as taken.",
)
@click.option("--max-rate", type=float, default=None, help="At most this many requests a second.")
@click.option("--no-outcomes", is_flag=True, help="Send the predictions only.")
@click.option(
    "--original-instants",
    is_flag=True,
    help="Send each prediction with the instant it originally occurred at (occurred_at; "
    "a file row's time column), for a production-parallel history; the target key needs "
    "<deployment>:load-history.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Resume file: the last position sent (for a file, how many requests) is kept here "
    "and skipped on the next run.",
)
@click.pass_context
def replay_command(
    ctx: click.Context,
    target: str,
    key: str | None,
    start: str | None,
    end: str | None,
    data_file: Path | None,
    deployment: str | None,
    time_column: str,
    label: str | None,
    label_time_column: str | None,
    speed: float,
    max_rate: float | None,
    no_outcomes: bool,
    original_instants: bool,
    state_file: Path | None,
) -> None:
    """Send historic requests to a running service at their original cadence times --speed."""
    done = (
        json.loads(state_file.read_text())["position"] if state_file and state_file.exists() else 0
    )
    settings = settings_from(ctx)
    key = key or settings.replay_key
    if not key:
        raise click.UsageError("give the target's predictor key: --key or LEDGER_REPLAY_KEY")
    if data_file is None and (label or label_time_column):
        raise click.UsageError("--label and --label-time-column go with --file")
    send = http_sender(target, key)
    source = Ledger(replace(settings, group_commit=False))
    try:
        if data_file is not None:
            if not deployment:
                raise click.UsageError("--file needs --deployment")
            columns = FileColumns(time_column, label, label_time_column)
            frame = read_file(data_file, columns)
            check_file_columns(frame, columns, deployment_schema(send, deployment))
            requests = file_requests(frame, data_file.name, deployment, columns, skip=done)
            if original_instants:
                requests = (with_instant(r) for r in requests)
            if no_outcomes:
                requests = (r for r in requests if r.kind != "outcome")
            total = None
        else:
            after = max(resolve_as_of(source.engine, start) or 0, done)
            until = resolve_as_of(source.engine, end) or head_position(source.engine)
            requests = ledger_requests(
                source, after, until, outcomes=not no_outcomes, instants=original_instants
            )
            total = None
        with click.progressbar(requests, length=total, label="replaying", show_pos=True) as bar:

            def checkpoint(request):  # noqa: ANN001
                if state_file:
                    state_file.write_text(json.dumps({"position": request.position}))

            stats = replay(
                iter(bar),
                send,
                speed=speed,
                max_rate=max_rate,
                progress=checkpoint,
            )
    finally:
        source.close()
    click.echo(
        json.dumps(
            {
                "sent": stats.sent,
                "failed": stats.failed,
                "skipped_erased": stats.skipped_erased,
                "statuses": stats.statuses,
                "last_position": stats.last_position,
            },
            sort_keys=True,
        )
    )


@click.command("compare")
@click.option(
    "--candidate", "candidate_url", required=True, help="Database URL of the parallel ledger."
)
@click.option(
    "--since",
    default=None,
    help="Count only predictions recorded after this (instant or pos:N), on both sides.",
)
@click.option("--deployment", default=None)
@click.option("--limit", default=100, show_default=True, help="How many differing rows to list.")
@click.pass_context
def compare(
    ctx: click.Context, candidate_url: str, since: str | None, deployment: str | None, limit: int
) -> None:
    """The parallel ledger's answers against the original ones for the same requests."""
    settings = replace(settings_from(ctx), group_commit=False)
    baseline, candidate = Ledger(settings), Ledger(replace(settings, database_url=candidate_url))
    try:
        after = resolve_as_of(baseline.engine, since) or 0
        candidate_after = resolve_as_of(candidate.engine, since) or 0  # its own positions
        report = compare_ledgers(baseline, candidate, after, deployment, limit, candidate_after)
    finally:
        baseline.close()
        candidate.close()
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str))


def register(group: click.Group) -> None:
    group.add_command(replay_command)
    group.add_command(compare)
