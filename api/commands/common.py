"""What every verb shares: settings from the environment and --db, and the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ledger.application import Ledger
from ledger.errors import NotAuthorized
from ledger.settings import Settings


def settings_from(ctx: click.Context) -> Settings:
    """The settings `ledger` read at start (api/cli.py); a verb run on its own reads its own."""
    settings = (ctx.find_root().obj or {}).get("settings")
    return settings if isinstance(settings, Settings) else Settings.from_env()


@contextmanager
def open_ledger(ctx: click.Context, **overrides: object) -> Iterator[Ledger]:
    settings = settings_from(ctx)
    # One CLI process writes alone: group commit would only add a thread.
    from dataclasses import replace

    app = Ledger(replace(settings, group_commit=False, **overrides))
    try:
        yield app
    except NotAuthorized as error:  # a key the ledger does not know: say so, record nothing
        raise click.ClickException(error.detail) from None
    finally:
        app.close()
