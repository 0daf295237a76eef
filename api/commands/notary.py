"""`ledger signing-key init|rotate`, `ledger digest`, `ledger verify`, `ledger notary advance`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.commands.common import open_ledger, settings_from
from ledger import notary
from ledger.application import cli_actor
from ledger.database import create_engine
from ledger.errors import LedgerError
from ledger.settings import Settings


class Refused(click.ClickException):
    """Bad input: exit status 2, so scripts can tell it from a failed verification (1)."""

    exit_code = 2


class TamperRefused(click.ClickException):
    """Signing refused because the chain was rewritten: exit status 1, as for tampering."""

    exit_code = 1


@contextmanager
def _refusals() -> Iterator[None]:
    """A LedgerError becomes a one-line message and exit status 2 (1 if tampered), no traceback."""
    try:
        yield
    except notary.TamperSuspected as error:
        raise TamperRefused(error.detail) from error
    except LedgerError as error:
        raise Refused(error.detail) from error
    except (
        OSError,
        ValueError,
    ) as error:  # an unreadable file or URL (urllib's errors are OSErrors)
        raise Refused(f"{type(error).__name__}: {error}") from error


def _key_path(ctx: click.Context, given: str | None) -> Path:
    return Path(given) if given else notary.default_key_path(settings_from(ctx))


key_file_option = click.option(
    "--key-file", default=None, help="Private key file (default: <secrets>/signing-key.pem)."
)


@click.group("signing-key")
def signing_key_group() -> None:
    """Create or rotate the Ed25519 key that signs chain digests."""


@signing_key_group.command("init")
@key_file_option
@click.pass_context
def init(ctx: click.Context, key_file: str | None) -> None:
    """Create the key pair once; refuses to overwrite an existing key."""
    path = _key_path(ctx, key_file)
    with _refusals(), open_ledger(ctx) as ledger:
        key_id = notary.create_signing_key(ledger, path, cli_actor(ledger))
    click.echo(
        f"signing key {key_id} created: private half {path} (keep it safe), "
        f"public half {notary.service.public_key_path(path)} and recorded in the ledger"
    )


@signing_key_group.command("rotate")
@key_file_option
@click.option(
    "--keep-retired",
    is_flag=True,
    help="Keep the retired private key, encrypted under a passphrase asked for now "
    "(default: it is overwritten and removed; its public half is kept either way).",
)
@click.pass_context
def rotate(ctx: click.Context, key_file: str | None, keep_retired: bool) -> None:
    """Retire the signing key at a recorded position and put its successor in its place."""
    path = _key_path(ctx, key_file)
    passphrase = _new_passphrase() if keep_retired else None
    with _refusals(), open_ledger(ctx) as ledger:
        old_id, new_id = notary.rotate_signing_key(ledger, path, cli_actor(ledger), passphrase)
    kept = "kept encrypted" if keep_retired else "removed"
    click.echo(
        f"signing key {old_id} retired (private half {kept}, public half kept beside it), "
        f"{new_id} is now at {path}"
    )


def _new_passphrase() -> bytes:
    text = click.prompt("Passphrase for the retired key", hide_input=True, confirmation_prompt=True)
    if not text:
        raise Refused("an empty passphrase protects nothing")
    return str(text).encode()


@click.command("digest")
@key_file_option
@click.option(
    "--no-write", is_flag=True, help="Print only; do not write into the digest directory."
)
@click.option(
    "--previous",
    "previous_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The last digest issued (a digest file, or GET /v1/ledger/digest's answer): the "
    "head is signed only if the chain still leads from it. Needed with --no-write when the "
    "digest directory holds no digest.",
)
@click.pass_context
def digest(
    ctx: click.Context, key_file: str | None, no_write: bool, previous_file: str | None
) -> None:
    """Catch the chain up, link its head to the last digest, sign it and print it as JSON."""
    settings = settings_from(ctx)
    engine = create_engine(settings.database_url)
    try:
        with _refusals():
            previous = notary.load_digest(Path(previous_file)) if previous_file else None
            issued = notary.issue_digest(
                engine,
                _key_path(ctx, key_file),
                settings.digests_dir,
                previous,
                write=not no_write,
            )
    finally:
        engine.dispose()
    click.echo(json.dumps(issued.to_json(), indent=2))


@click.command("verify")
@click.option(
    "--digest",
    "digest_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A digest file to check (repeatable). Default: the latest in the digest directory.",
)
@click.option(
    "--pubkey",
    "pubkeys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Pinned public key, PEM or base64 (repeatable: keys before and after a rotation).",
)
@click.option(
    "--from-url",
    default=None,
    help="Verify the auditor API's raw event stream instead of the database.",
)
@click.option(
    "--chain-only",
    is_flag=True,
    help="Ask only that the chain be consistent with itself: exit 0 without a notary table "
    "or digest to compare with (otherwise that exits 3).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(
    ctx: click.Context,
    digest_files: tuple[str, ...],
    pubkeys: tuple[str, ...],
    from_url: str | None,
    chain_only: bool,
    as_json: bool,
) -> None:
    """Recompute the chain and name the first position changed, removed, inserted or reordered.

    The last line says what the chain was compared with. Exit status: 0 everything asked
    for held, 1 tampered, 2 bad input, 3 nothing to compare with (chain consistent only).
    """
    settings = settings_from(ctx)
    with _refusals():
        digests = [notary.load_digest(Path(f)) for f in digest_files or _default_digest(settings)]
        public_key = [notary.load_public_key(Path(p)) for p in pubkeys] if pubkeys else None
        report = _run_verification(settings, from_url, digests, public_key)
    if as_json:
        click.echo(json.dumps(report.to_dict(chain_only), indent=2))
    else:
        click.echo(report.render(chain_only))
    sys.exit(report.exit_code(chain_only))


def _default_digest(settings: Settings) -> list[Path]:
    latest = notary.latest_digest_file(settings.digests_dir)
    if latest is not None:
        click.echo(f"checking the latest digest in the digest directory: {latest}", err=True)
    return [latest] if latest else []


def _run_verification(
    settings: Settings,
    from_url: str | None,
    digests: list[notary.Digest],
    public_key: list[Ed25519PublicKey] | None,
) -> notary.VerificationReport:
    if from_url:
        return notary.verify_events(
            notary.iter_events_from_url(from_url, settings.api_key), None, digests, public_key
        )
    engine = create_engine(settings.database_url)
    try:
        return notary.verify_database(engine, digests, public_key)
    finally:
        engine.dispose()


@click.group("notary")
def notary_group() -> None:
    """The hash chain's keeper."""


@notary_group.command("advance")
@click.pass_context
def advance_command(ctx: click.Context) -> None:
    """Chain every event recorded since the last run."""
    engine = create_engine(settings_from(ctx).database_url)
    try:
        click.echo(f"chained up to position {notary.advance(engine)}")
    finally:
        engine.dispose()


def register(group: click.Group) -> None:
    for command in (signing_key_group, digest, verify, notary_group):
        group.add_command(command)
