"""Summarise py-spy's collapsed stacks (`py-spy record -f raw`): where a worker's samples go.

.venv/bin/python -m bench.profile_summary FILE [--top 25]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

IDLE = ("wait_for_and_dispatch_events", "EpollSelector.select", "_worker thread.py")


def frame_name(frame: str) -> str:
    """`function (path/to/file.py:12)` -> `function file.py`."""
    name, _, where = frame.partition(" (")
    return f"{name} {where.split(':')[0].rsplit('/', 1)[-1]}" if where else name


def summarise(path: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(frame, inclusive %, self %) of the busy samples (threads parked in epoll/queue waits left out)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";")]
        if any(idle in frames[-1] for idle in IDLE):
            continue
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if not total:
        return []
    return [
        (name, 100 * n / total, 100 * own[name] / total) for name, n in inclusive.most_common(top)
    ]


def markdown(path: Path, top: int = 25) -> str:
    rows = ["| frame | inclusive % | self % |", "|---|---:|---:|"]
    rows += [f"| `{name}` | {inc:.1f} | {own:.1f} |" for name, inc, own in summarise(path, top)]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(markdown(args.file, args.top))


if __name__ == "__main__":
    main()
