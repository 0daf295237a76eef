"""The `ledger` command line: one click group; each verb family lives in api/commands/."""

from __future__ import annotations

import importlib

import click

# Each verb and the module in api/commands/ that registers it. Modules load only when their
# verb runs, so `ledger verify` does not import scikit-learn, scipy or the web app.
VERBS: dict[str, str] = {
    "autopilot": "autopilot",
    "clone": "clone",
    "compare": "replay",
    "digest": "notary",
    "explain": "explain",
    "export": "export",
    "feeds": "health",
    "forget": "forget",
    "health-pass": "health",
    "keys": "keys",
    "master-key": "keys",
    "notary": "notary",
    "project": "project",
    "quality-check": "health",
    "replay": "replay",
    "reproduce": "reproduce",
    "restored": "restore",
    "retention": "forget",
    "serve": "serve",
    "signing-key": "notary",
    "state": "state",
    "train": "train",
    "verify": "notary",
}


def module_commands(module_name: str) -> dict[str, click.Command]:
    """The commands one module of api/commands/ registers."""
    module = importlib.import_module(f"api.commands.{module_name}")
    holder = click.Group()
    module.register(holder)
    return holder.commands


class LazyGroup(click.Group):
    """A click group whose verbs are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = VERBS.get(name)
        return module_commands(module_name).get(name) if module_name else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each verb's whole summary line, wrapped rather than cut at 45 characters with '...'."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """Every verb's refusals end in one line on stderr (api/cli_errors.py)."""
        from api.cli_errors import told_in_one_line

        def debug() -> bool:  # read on failure: the settings are made by main() itself
            settings = (ctx.obj or {}).get("settings")
            return bool(ctx.params.get("debug")) or bool(getattr(settings, "debug", False))

        with told_in_one_line(debug):
            return super().invoke(ctx)


@click.group(cls=LazyGroup)
@click.option(
    "--db",
    "database_url",
    default=None,
    help="Database URL (default: LEDGER_DATABASE_URL, else a SQLite file under LEDGER_HOME).",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of an unexpected error (also LEDGER_DEBUG=1).",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, debug: bool) -> None:
    """Provenance Ledger: record, serve and prove what machine-learning models did."""
    from ledger.errors import InvalidSetting
    from ledger.settings import Settings

    ctx.ensure_object(dict)
    try:  # once per process: every verb is handed these settings (api/commands/common.py)
        ctx.obj["settings"] = Settings.from_env(database_url=database_url)
    except InvalidSetting as error:
        raise click.ClickException(str(error)) from None
