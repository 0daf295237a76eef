"""One settings object: each variable, default and meaning declared once, read once at start.

The entry points (the `ledger` command, gunicorn's config, the sidecars, api.wsgi) call
`Settings.from_env()`; everything below them is handed the object, never the environment.
`python -m ledger.settings --markdown` writes the table in docs/CONFIGURATION.md from it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from ledger.errors import InvalidSetting

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MiB = 1024 * 1024
Check = Callable[[Any], str | None]  # a value -> why it is refused, or None


def setting(
    env: str,
    default: Any,
    doc: str,
    *,
    shown: str | None = None,
    secret: bool = False,
    check: Check | None = None,
) -> Any:
    """A Settings field: its variable, default and one-line meaning (`shown`: a derived default)."""
    metadata = {"env": env, "doc": doc, "shown": shown, "secret": secret, "check": check}
    return field(default=default, repr=not secret, metadata=metadata)


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be at least {low}"


def between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be from {low} to {high}"


def hex_key(value: str) -> str | None:
    """An AES-256 key as text: empty (a key file instead) or 64 hex characters."""
    try:
        if not value or len(bytes.fromhex(value)) == 32:
            return None
    except ValueError:
        pass
    return "must be 64 hex characters (32 bytes)"


def hex_secret(value: str) -> str | None:
    """A secret as text: empty (a file instead) or hex of at least one byte."""
    try:
        if not value or bytes.fromhex(value):
            return None
    except ValueError:
        pass
    return (
        "must be hex, as in <secrets_dir>/pepper; a pepper once set as raw text keeps its keys "
        "when set to that text's bytes in hex (printf %s TEXT | xxd -p -c 256)"
    )


def log_level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


NON_NEGATIVE = at_least(0)


@dataclass(frozen=True)
class Settings:
    """Everything configurable; tests build one directly or with dataclasses.replace.

    Defaults derived from `home` (database_url, secrets_dir, digests_dir) are fixed when the
    object is built: replace(settings, home=...) keeps them, so pass them too.
    """

    home: Path = setting(
        "LEDGER_HOME", Path("var"), "Directory of the SQLite file, secrets, digests and metrics."
    )
    database_url: str = setting(
        "LEDGER_DATABASE_URL",
        "",
        "The event store (SQLAlchemy URL); `--db` overrides it.",
        shown="sqlite:///<home>/ledger.db",
    )
    read_database_url: str = setting(
        "LEDGER_READ_DATABASE_URL",
        "",
        "A streaming hot standby for projection reads (api/replica.py); empty: the primary.",
    )
    secrets_dir: Path = setting(
        "LEDGER_SECRETS_DIR",
        None,
        "Directory of the API-key pepper, master key and signing key; shared by every API process.",
        shown="<home>/secrets",
    )
    digests_dir: Path = setting(
        "LEDGER_DIGEST_DIR",
        None,
        "Where signed chain digests are written; keep it off the database host.",
        shown="<home>/digests",
    )
    pepper: str = setting(
        "LEDGER_PEPPER",
        "",
        "Pepper (hex) of API-key digests and subject refs; empty: `<secrets_dir>/pepper`.",
        secret=True,
        check=hex_secret,
    )
    master_key: str = setting(
        "LEDGER_MASTER_KEY",
        "",
        "Key (64 hex) wrapping subject keys; empty: `<secrets_dir>/master.key`, made on first use.",
        secret=True,
        check=hex_key,
    )
    next_master_key: str = setting(
        "LEDGER_NEXT_MASTER_KEY",
        "",
        "During a master-key rotation: the key (64 hex) replacing LEDGER_MASTER_KEY.",
        secret=True,
        check=hex_key,
    )
    api_key: str = setting(
        "LEDGER_API_KEY",
        "",
        "The command line's key, checked like a bearer key: the actor of its changes and the "
        "bearer of `verify --from-url`; empty: changes are by `os-user:<name>`.",
        secret=True,
    )
    replay_key: str = setting(
        "LEDGER_REPLAY_KEY",
        "",
        "A predictor key of the service `ledger replay` sends to (or `--key`).",
        secret=True,
    )
    git_commit: str = setting(
        "LEDGER_GIT_COMMIT",
        "",
        "The commit a training run records where the tree has no .git (images).",
    )
    log_level: str = setting(
        "LEDGER_LOG_LEVEL", "INFO", "Lowest level of the JSON log lines.", check=log_level
    )
    group_commit: bool = setting(
        "LEDGER_GROUP_COMMIT",
        True,
        "Batch concurrent writers' inserts into one transaction per worker.",
    )
    writer_process: bool = setting(
        "LEDGER_WRITER_PROCESS",
        True,
        "Under gunicorn on PostgreSQL, one writer process per host commits every worker's "
        "inserts; off: a writer thread per worker (as SQLite and processes outside gunicorn).",
    )
    group_commit_max_events: int = setting(
        "LEDGER_GROUP_COMMIT_MAX_EVENTS",
        2000,
        "Most events in one group commit.",
        check=at_least(1),
    )
    artifact_cache_bytes: int = setting(
        "LEDGER_ARTIFACT_CACHE_BYTES", 512 * MiB, "Model artifacts kept in memory per process."
    )
    max_batch_rows: int = setting(
        "LEDGER_MAX_BATCH_ROWS",
        10_000,
        "Most rows in one prediction, outcome or quality-check batch.",
        check=at_least(1),
    )
    max_body_bytes: int = setting(
        "LEDGER_MAX_BODY_BYTES", 64 * MiB, "Largest request body (413 above it).", check=at_least(1)
    )
    max_model_bytes: int = setting(
        "LEDGER_MAX_MODEL_BYTES",
        256 * MiB,
        "Largest body of a model upload (413 above it).",
        check=at_least(1),
    )
    digest_interval_seconds: int = setting(
        "LEDGER_DIGEST_INTERVAL_SECONDS",
        300,
        "Seconds between signed digests written by the sidecar; 0: none.",
    )
    digest_read_write_seconds: float = setting(
        "LEDGER_DIGEST_READ_WRITE_SECONDS",
        300.0,
        "GET /v1/ledger/digest writes a digest file at most once per this many seconds;"
        " between, it returns the file at the head or signs the head without writing.",
        check=at_least(0),
    )
    verify_jobs_per_key: int = setting(
        "LEDGER_VERIFY_JOBS_PER_KEY",
        1,
        "Verification runs one API key may have running on a worker (429 beyond).",
        check=at_least(1),
    )
    verify_jobs_total: int = setting(
        "LEDGER_VERIFY_JOBS_TOTAL",
        2,
        "Verification runs a worker runs at once, all keys together (429 beyond).",
        check=at_least(1),
    )
    auth_cache_seconds: float = setting(
        "LEDGER_AUTH_CACHE_SECONDS",
        2.0,
        "A revoked API key is refused on every worker within this; 0: read the key each request.",
    )
    key_cache_seconds: float = setting(
        "LEDGER_KEY_CACHE_SECONDS",
        2.0,
        "A forgotten subject's key is dropped from every process's cache within this.",
    )
    rate_limit_per_second: float = setting(
        "LEDGER_RATE_LIMIT_PER_SECOND", 1000.0, "Requests per API key and worker; 0: no limit."
    )
    rate_limit_burst: float = setting(
        "LEDGER_RATE_LIMIT_BURST", 2000.0, "Requests a key may send at once above the rate."
    )
    deployment_staleness_ms: float = setting(
        "LEDGER_DEPLOYMENT_STALENESS_MS",
        1000.0,
        "Every worker serves a deployment's change within this of its commit, without a "
        "query per request, and a change over HTTP answers once this has passed; 0: compare "
        "the deployment's version on every request.",
        check=at_least(0),
    )
    standby_wait_seconds: float = setting(
        "LEDGER_STANDBY_WAIT_SECONDS",
        1.0,
        "A read waits this long for the standby to catch up, then the primary answers.",
    )
    projection_stall_grace_seconds: float = setting(
        "LEDGER_PROJECTION_STALL_GRACE_SECONDS",
        10.0,
        "/healthz answers 503 once a projection has failed to apply an event for this long.",
        check=at_least(0),
    )
    host: str = setting("LEDGER_HOST", "127.0.0.1", "Address the API listens on.")
    port: int = setting("LEDGER_PORT", 8000, "Port the API listens on.", check=between(1, 65535))
    workers: int = setting(
        "LEDGER_WORKERS",
        0,
        "API worker processes; 0: one per core, from 2 to 8.",
    )
    threads: int = setting("LEDGER_THREADS", 8, "Threads per API worker.", check=at_least(1))
    body_timeout_seconds: float = setting(
        "LEDGER_BODY_TIMEOUT_SECONDS",
        10.0,
        "Seconds a request (headers and body) has to arrive in full, from when its connection"
        " is queued for a thread; 408 past it.",
    )
    demo_drift: bool = setting(
        "LEDGER_DEMO_DRIFT", True, "`ledger serve --demo` also sends drifted traffic."
    )
    debug: bool = setting(
        "LEDGER_DEBUG", False, "`ledger` prints the traceback of an unexpected error (--debug)."
    )

    def __post_init__(self) -> None:
        derived = {
            "database_url": f"sqlite:///{Path(self.home) / 'ledger.db'}",
            "secrets_dir": Path(self.home) / "secrets",
            "digests_dir": Path(self.home) / "digests",
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        for spec in declared():
            check, value = spec.metadata["check"] or _numeric_check(spec), getattr(self, spec.name)
            reason = check(value) if check is not None else None
            if reason:
                raise InvalidSetting(f"{spec.metadata['env']}={_show(spec, value)}: {reason}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The environment's values over the defaults, then the given overrides (None: unset)."""
        environ = os.environ if environ is None else environ
        values = {}
        for spec in declared():
            raw = environ.get(spec.metadata["env"], "").strip()
            if raw:  # an empty variable (e.g. compose's `${X:-}`) means the default
                values[spec.name] = parse(spec, raw)
        settings = cls(**values)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    @classmethod
    def at_start(cls, **overrides: Any) -> Settings:
        """from_env for a process's entry point: a malformed variable ends it with one line."""
        try:
            return cls.from_env(**overrides)
        except InvalidSetting as error:
            raise SystemExit(f"error: {error}") from None


@cache
def declared() -> tuple[Field[Any], ...]:
    """Every setting's field, in declaration order."""
    return fields(Settings)


@cache
def _types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _numeric_check(spec: Field[Any]) -> Check | None:
    return NON_NEGATIVE if _types()[spec.name] in (int, float) else None


def _boolean(raw: str) -> bool:
    if raw.lower() in TRUE + FALSE:
        return raw.lower() in TRUE
    raise ValueError(raw)


# Each field type: its name in messages and docs, and how a variable's text becomes one.
PARSERS: dict[Any, tuple[str, Callable[[str], Any]]] = {
    Path: ("path", Path),
    str: ("text", str),
    int: ("integer", int),
    float: ("number", float),
    bool: ("boolean", _boolean),
}


def parse(spec: Field[Any], raw: str) -> Any:
    """One variable's text as its field's type, or an error naming the variable."""
    kind, parser = PARSERS[_types()[spec.name]]
    try:
        return parser(raw)
    except ValueError:
        accepted = f" ({'/'.join(TRUE)} or {'/'.join(FALSE)})" if kind == "boolean" else ""
        raise InvalidSetting(
            f"{spec.metadata['env']}={_show(spec, raw)} is not {_article(kind)} {kind}{accepted}",
            field=spec.name,
        ) from None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _show(spec: Field[Any], value: Any) -> str:
    return "(hidden)" if spec.metadata["secret"] else repr(value)


def _as_text(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


# -- docs/CONFIGURATION.md ---------------------------------------------------------------
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "CONFIGURATION.md"
BEGIN, END = "<!-- settings table: begin -->", "<!-- settings table: end -->"


def markdown_table() -> str:
    """One row per setting, from the declaration above."""
    rows = ["| Variable | Field | Type | Default | Meaning |", "|---|---|---|---|---|"]
    for spec in declared():
        kind = PARSERS[_types()[spec.name]][0] + (", secret" if spec.metadata["secret"] else "")
        default = spec.metadata["shown"] or _as_text(spec.default)
        shown = f"`{default}`" if default else "(empty)"
        rows.append(
            f"| `{spec.metadata['env']}` | `{spec.name}` | {kind} | {shown} "
            f"| {spec.metadata['doc']} |"
        )
    return "\n".join(rows)


def with_table(document: str) -> str:
    """The document with the text between its markers replaced by the current table."""
    head, found, rest = document.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise InvalidSetting(f"{DOC_PATH.name} lacks the markers {BEGIN} and {END}")
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m ledger.settings --markdown", file=sys.stderr)
        return 2
    DOC_PATH.write_text(with_table(DOC_PATH.read_text()))
    print(f"wrote the settings table to {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
