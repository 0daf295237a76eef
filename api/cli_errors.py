"""What the `ledger` command line says when a verb fails: one line that says what to fix.

A refusal (a LedgerError), a file or URL that cannot be read, a database that cannot be
reached or a malformed document becomes `Error: ...` on stderr and exit status 1. Anything
else is a fault of ours: one line too, and its traceback with `--debug` or LEDGER_DEBUG=1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from ledger.errors import LedgerError


class Fault(click.ClickException):
    """An unexpected error, told in one line: exit status 70 (EX_SOFTWARE), not a refusal."""

    exit_code = 70


def _known() -> tuple[type[BaseException], ...]:
    """Errors a person can fix by changing the input, the file, the URL or the setting."""
    import marshmallow
    import sqlalchemy.exc
    import yaml

    return (
        OSError,  # a missing or unreadable file; an unreachable URL (urllib's errors too)
        UnicodeDecodeError,
        json.JSONDecodeError,
        yaml.YAMLError,
        marshmallow.ValidationError,
        sqlalchemy.exc.ArgumentError,  # a malformed database URL or an unknown driver
        sqlalchemy.exc.OperationalError,  # a database that cannot be reached or opened
    )


def one_line(error: BaseException) -> str:
    """The error's message on one line, led by what kind of error it is."""
    if isinstance(error, LedgerError):
        text = f"{error.code}: {error.detail}"
    elif isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or error}"
    else:
        import sqlalchemy.exc

        if isinstance(error, sqlalchemy.exc.OperationalError):
            text = f"the database cannot be reached or opened: {error.orig}"
        elif isinstance(error, sqlalchemy.exc.ArgumentError):
            text = (
                f"the database URL (--db or LEDGER_DATABASE_URL) is not usable: {error}; "
                "e.g. sqlite:///ledger.db or postgresql+psycopg://user@host/name"
            )
        else:
            text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


@contextmanager
def told_in_one_line(debug: Callable[[], bool]) -> Iterator[None]:
    """Turn a failing verb's error into click's one-line `Error: ...` (see the module doc)."""
    try:
        yield
    except click.UsageError:
        raise
    except click.ClickException as error:  # a verb's own refusal: on one line too
        error.message = " ".join(error.message.split())
        raise
    except (click.exceptions.Exit, click.Abort):
        raise
    except LedgerError as error:
        raise click.ClickException(one_line(error)) from error
    except Exception as error:
        if isinstance(error, _known()):
            raise click.ClickException(one_line(error)) from error
        if debug():
            raise
        raise Fault(
            f"unexpected {one_line(error)} (run `ledger --debug ...` for the traceback)"
        ) from error
