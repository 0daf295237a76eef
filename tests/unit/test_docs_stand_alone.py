"""The repository explains itself: no pointers to notes, trackers or machines outside it,
and every relative link in its markdown leads to a file (and heading) that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED_SUFFIXES = (".md", ".py", ".cfg", ".toml", ".yaml", ".yml")
CHECKED_NAMES = ("Makefile",)
SKIPPED_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__"}
# Written in pieces so that this file does not name what it forbids.
OUTSIDE_NOTES = [name + ".md" for name in ("DESIGN", "MEASURED", "STYLE", "JOUR" + "NEYS")]
FORBIDDEN = [
    (
        re.compile("|".join(re.escape(n) for n in OUTSIDE_NOTES)),
        "a note that is not in the repository",
    ),
    (re.compile(re.escape("/" + "work/")), "an absolute path on one machine"),
    (re.compile(r"\b" + "issue" + r"s?[ -]#?\d+", re.IGNORECASE), "a tracker's issue number"),
    (re.compile(r"\(#\d+\)"), "a tracker's issue number"),
]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def repository_files() -> list[Path]:
    """Tracked files plus new ones not ignored; a walk of the tree when git is not there."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        paths = [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.is_file())


def checked(path: Path) -> bool:
    return path.suffix in CHECKED_SUFFIXES or path.name in CHECKED_NAMES


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """Markdown without code blocks and code spans, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """Relative links of a markdown file (or of `text`, as if it were that file) that lead nowhere."""
    problems = []
    text = path.read_text(encoding="utf-8") if text is None else text
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto: ...
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        relative = linked.relative_to(ROOT).as_posix() if linked.is_relative_to(ROOT) else None
        if not linked.exists():
            problems.append(f"{target}: no such file")
            continue
        if fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{target}: no heading #{fragment} in {relative}")
    return problems


def test_no_file_points_outside_the_repository_or_at_a_tracker() -> None:
    found = []
    for path in filter(checked, repository_files()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern, what in FORBIDDEN:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r} ({what})")
    assert not found, "say it in the repository's own words instead:\n" + "\n".join(found)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist(
    path: Path,
) -> None:
    problems = broken_links(path)
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_link_checker_sees_a_broken_link_and_a_missing_heading() -> None:
    page = ROOT / "docs" / "ARCHITECTURE.md"
    assert "one-clock" in anchors(page)
    assert slug("Scale-out: PostgreSQL plus more processes") == (
        "scale-out-postgresql-plus-more-processes"
    )
    text = "[a](ARCHITECTURE.md#one-clock) [b](NOWHERE.md) [c](ARCHITECTURE.md#nowhere) `[d](x)`"
    assert broken_links(ROOT / "docs" / "probe.md", text) == [
        "NOWHERE.md: no such file",
        "ARCHITECTURE.md#nowhere: no heading #nowhere in docs/ARCHITECTURE.md",
    ]
