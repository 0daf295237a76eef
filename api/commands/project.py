"""`ledger project --follow | --rebuild [NAME]`: run or rebuild the read tables."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from api.commands.common import open_ledger
from api.observability import configure_logging
from projections import events as ev
from projections.registry import ALL, named
from projections.runner import Runner


@click.command("project")
@click.option(
    "--follow", is_flag=True, help="Run every projection (one runner each) until stopped."
)
@click.option("--rebuild", is_flag=True, help="Rebuild beside the live tables and swap them in.")
@click.argument("name", required=False)
@click.option("--page-size", default=1000, show_default=True, help="Events per transaction.")
@click.option("--poll", default=0.2, show_default=True, help="Seconds between polls when idle.")
@click.pass_context
def project(
    ctx: click.Context, follow: bool, rebuild: bool, name: str | None, page_size: int, poll: float
) -> None:
    """Follow the ledger into the read tables, or rebuild them from position 0."""
    if follow == rebuild:
        raise click.UsageError("give exactly one of --follow or --rebuild")
    chosen = [named(name)] if name else list(ALL)
    with open_ledger(ctx) as ledger:
        runners = [
            Runner(ledger.engine, cls, page_size=page_size, poll_interval=poll) for cls in chosen
        ]
        if rebuild:
            for runner in runners:
                _rebuild(ledger.engine, runner)
        else:
            configure_logging(ledger.settings.log_level)  # a stall's lines, as JSON on stderr
            _follow(runners)


def _rebuild(engine: Any, runner: Runner) -> None:
    with engine.connect() as conn:
        head = ev.head(conn)
    with click.progressbar(
        length=max(head, 1), label=f"rebuilding {runner.cls.name}", file=sys.stderr
    ) as bar:
        done = [0]

        def progress(position: int, _head: int) -> None:
            bar.update(max(min(position, head) - done[0], 0))
            done[0] = max(done[0], min(position, head))

        position = runner.rebuild(progress)
        bar.update(max(head - done[0], 0))
    click.echo(f"{runner.cls.name}: rebuilt up to position {position}")


def _follow(runners: list[Runner]) -> None:
    stop = threading.Event()
    failures: list[BaseException] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def run(runner: Runner) -> None:
        try:
            runner.follow(stop)
        except BaseException as error:  # a lost lock or database: stop everything, say why
            failures.append(error)
            stop.set()

    threads = [
        threading.Thread(target=run, args=(r,), name=f"projection-{r.cls.name}") for r in runners
    ]
    for thread in threads:
        thread.start()
    click.echo(f"following: {', '.join(r.cls.name for r in runners)}", err=True)
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join()
    if failures:
        raise click.ClickException(f"a projection runner stopped: {failures[0]}")


def register(group: click.Group) -> None:
    group.add_command(project)
