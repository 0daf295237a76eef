"""One benchmark run over two revisions, alternating, so a change is measured against its base.

    .venv/bin/python -m bench.revisions --base REV [--head REV] [--rounds 2] -- bench.api_single_row --n 300

The base revision, and the head one if given (else this tree as it is), is checked out
beside the tree as a detached git worktree, removed after. The module runs in turn in each
tree, base first in odd rounds and head first in even ones, so a load change on the machine
falls on both sides. Each figure of the output is paired
with the same figure of the other side: the numbers of a JSON document on the output's last
line by key, else each line's numbers, named by the words before them. Printed per figure: the medians
over the rounds, base and head, and head / base.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


def figures(output: str) -> dict[str, float]:
    """The named numbers of one run's output (its last line's JSON, else every line's numbers)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if lines:
        try:
            return dict(_flatten(json.loads(lines[-1]), ""))
        except ValueError:
            pass
    named: dict[str, float] = {}
    for line in lines:
        head = line.split(":", 1)[0] if ":" in line else ""
        for match in NUMBER.finditer(line):
            before = re.findall(r"[A-Za-z][\w/]*", line[: match.start()])[-2:]
            name = f"{head}: {' '.join(before)}".strip(": ")
            while name in named:
                name += "'"
            named[name] = float(match.group().replace(",", ""))
    return named


def _flatten(value: object, prefix: str):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield prefix, float(value)


def run_in(tree: Path, module: list[str], timeout: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-m", *module],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"{module[0]} failed in {tree}:\n{done.stderr[-2000:]}")
    return done.stdout


def compare(base: list[dict[str, float]], head: list[dict[str, float]]) -> list[str]:
    """One line per figure present on both sides: median base, median head, head / base."""
    keys = [k for k in base[0] if all(k in run for run in base + head)]
    rows = []
    for key in keys:
        b = statistics.median(run[key] for run in base)
        h = statistics.median(run[key] for run in head)
        ratio = f"{h / b:.2f}x" if b else "-"
        rows.append(f"{key}: base {b:,.3f}  head {h:,.3f}  head/base {ratio}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--head", help="the revision to measure (default: this tree as it is)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for one module run")
    parser.add_argument("module", nargs=argparse.REMAINDER, help="-- bench.MODULE [ARGS]")
    args = parser.parse_args()
    module = args.module[1:] if args.module[:1] == ["--"] else args.module
    if not module:
        parser.error("name the benchmark module after --")
    with tempfile.TemporaryDirectory() as scratch:
        git = ["git", "-C", str(ROOT)]
        trees = {"base": args.base, "head": args.head}
        made = {}
        for side, revision in trees.items():
            if revision:
                made[side] = Path(scratch) / side
                subprocess.run(
                    [*git, "worktree", "add", "--detach", str(made[side]), revision], check=True
                )
        base_tree, head_tree = made["base"], made.get("head", ROOT)
        try:
            runs: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
            for round_ in range(args.rounds):
                order = [("base", base_tree), ("head", head_tree)]
                for side, tree in order if round_ % 2 == 0 else order[::-1]:
                    output = run_in(tree, module, args.timeout)
                    print(f"--- round {round_ + 1}, {side}\n{output.strip()}", flush=True)
                    runs[side].append(figures(output))
        finally:
            for tree in made.values():
                subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)
    print(f"\n{' '.join(module)}: medians over {args.rounds} rounds, base {args.base}")
    for row in compare(runs["base"], runs["head"]):
        print(row)


if __name__ == "__main__":
    main()
