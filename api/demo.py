"""`ledger serve --demo`: demo deployments, two trained models in each, and a key per role.

Idempotent: a demo whose history is loaded is left as it is, and the keys saved in
<home>/demo-keys.json on the first start are printed again on every later one. A first
start stopped before the history was loaded is refused with what to do, never completed
over what it left.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import structlog

from api.auth import Principal
from ledger.application import Ledger
from ledger.domain.access import ROLES
from ledger.settings import Settings

log = structlog.get_logger("ledger.demo")
ACTOR = "demo:bootstrap"
PERSONAL = ("customer_id",)  # the subject id: sealed per subject, never stored in plaintext


def keys_path(settings: Settings) -> Path:
    return Path(settings.home) / "demo-keys.json"


def bootstrap(settings: Settings) -> dict[str, str]:
    """Create what is missing of the demo and return a key per role."""
    from dataclasses import replace

    from api import demo_health

    ledger = Ledger(replace(settings, group_commit=False))  # one writer: no group commit thread
    try:
        if stopped := demo_health.interrupted(ledger):
            raise click.ClickException(
                f"the demo in {settings.home} is incomplete ({', '.join(stopped)}: its first "
                "start was stopped before the history was loaded); remove that directory "
                "(`make clean` removes var/) and start again"
            )
        # what has no history yet is loaded by a key granted load-history on it
        pending = demo_health.pending(ledger)
        loader = demo_health.new_loader(ledger, pending) if pending else None
        for name, specs in specs_by_deployment().items():
            if not demo_health.deployment_exists(ledger, name):
                create_deployment(ledger, name, specs, loader)
        demo_health.seed(settings, ledger, loader)  # feeds, traffic, outcomes, quality windows
        ensure_signing_key(ledger, settings)
        return ensure_keys(ledger, settings)
    finally:
        ledger.close()


def specs_by_deployment() -> dict[str, list[dict[str, Any]]]:
    """The trainers' demo specs, grouped by the deployment each joins."""
    from trainers.demo import demo_specs

    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for spec in demo_specs():
        grouped[spec["deployment"]].append(spec)
    return dict(grouped)


def create_deployment(
    ledger: Ledger, name: str, specs: list[dict[str, Any]], loader: Principal | None = None
) -> None:
    """The deployment serving these specs' features, then every spec trained into it (with a
    loader: at the start of the simulated history, so its first leader is set then)."""
    from api.demo_health import at_instant, history_start
    from trainers.record import train_and_record
    from trainers.schema import deployment_for

    # Outcomes mature at once in the demo, so its performance charts fill straight away.
    deployment = deployment_for(*specs, name=name, outcome_maturity_days=0)
    for feature in deployment["schema"]["features"]:
        feature["personal"] = feature["personal"] or feature["name"] in PERSONAL
    ledger.create_deployment(**deployment, actor=ACTOR)
    occurred_at = at_instant(loader, name, history_start()) if loader else None
    for spec in specs:
        train_and_record(ledger, spec, ACTOR, deployment=name, occurred_at=occurred_at)
    log.info("demo deployment created", deployment=name, trained_models=len(specs))


def ensure_signing_key(ledger: Ledger, settings: Settings) -> None:
    """A signing key, so that digests and `ledger verify` work in the demo too."""
    from ledger import notary

    path = notary.default_key_path(settings)
    if not path.exists():
        notary.create_signing_key(ledger, path, ACTOR)


def ensure_keys(ledger: Ledger, settings: Settings) -> dict[str, str]:
    """The saved demo keys, or three new ones saved (owner-only) for the next start."""
    path = keys_path(settings)
    if path.exists():
        saved = json.loads(path.read_text())
        if set(saved) == set(ROLES) and all(ledger.authenticate(key) for key in saved.values()):
            return saved
    keys = {
        role: ledger.issue_api_key(role=role, actor=ACTOR, label=f"demo {role}").key
        for role in ROLES
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=2)
    return keys


def print_keys(keys: dict[str, str], saved_in: Path, host: str, port: int) -> None:
    """The three keys and where to start, on stdout."""
    base = f"http://{host}:{port}"
    click.echo(f"\nDemo keys (also in {saved_in}):")
    for role in ROLES:
        click.echo(f"  {role:<10} {keys[role]}")
    click.echo(
        f"\nAPI {base}  docs {base}/docs  dashboard {base}/dashboard  (README.md has curl lines)\n"
    )
