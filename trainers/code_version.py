"""The code a model was trained by: git commit, dirty flag, Python and package versions."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "skops",
    "eventsourcing",
    "provenance-ledger",
)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = PROJECT_ROOT, configured_commit: str = "") -> dict[str, Any]:
    """Captured, not typed in; Settings.git_commit stands in where the tree has no .git (images)."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "git_commit": commit or configured_commit or None,
        "git_dirty": None if status is None else bool(status.strip()),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
