"""Every verb the command line lists resolves, and every registered command is listed."""

from __future__ import annotations

import pkgutil

import api.commands
from api.cli import VERBS, main, module_commands


def test_every_listed_verb_resolves_to_its_command() -> None:
    for verb in VERBS:
        command = main.get_command(None, verb)  # type: ignore[arg-type]
        assert command is not None and command.name == verb


def test_every_command_a_module_registers_is_listed() -> None:
    modules = [m.name for m in pkgutil.iter_modules(api.commands.__path__) if m.name != "common"]
    registered = {name: module for module in modules for name in module_commands(module)}
    assert registered == VERBS


def test_help_shows_each_verbs_whole_summary() -> None:
    from click.testing import CliRunner

    output = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    said = " ".join(output.split("Commands:")[1].split())
    assert "..." not in said
    for verb in VERBS:
        summary = main.get_command(None, verb).get_short_help_str(limit=1000)  # type: ignore[union-attr,arg-type]
        assert " ".join(summary.split()) in said, verb
