"""Every performance figure beside its baseline, measured in one run; writes bench/RESULTS.md.

    .venv/bin/python -m bench.run_all [--quick] [--profile] [--scale] [--only split phases http ...]

`make bench` runs `python -m bench.run_all --profile` (about 30 minutes on 2 cores).
One script per figure, each in its own process (so peak RSS and CPU are its own), loopback
only, each bounded by a timeout: split_cores (recording on vs off and the bare-Falcon floor,
the API on core 0 and a throwaway PostgreSQL cluster with wrk on core 1), phases (CPU per
request by phase, in-process), http_compare (gunicorn + wrk, recording on vs off, all on
the same two cores),
mlflow_serve (the MLflow baseline, when its venv exists or installs in time), batch_copy
(10,000 rows vs COPY), big_ledger (rebuild vs raw read, as_of vs now, provenance p99,
rebuild/export peak RSS) and verify (the notary over N events); with --scale, the HTTP figure
with 1, 2 and 4 API processes on one PostgreSQL, and bench.standby (auditor reads on a
streaming hot standby made by deploy/standby.sh, against reads on the primary). `--quick` is laptop-sized.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.mlflow_serve import DEFAULT_VENV
from bench.results import render

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = Path(os.environ.get("LEDGER_BENCH_MLFLOW_VENV", DEFAULT_VENV))


def steps(
    quick: bool, profile_dir: Path | None, big_events: int | None = None
) -> dict[str, tuple[list[str], float]]:
    """Each figure's command (module and arguments) and its time bound in seconds."""
    seconds = "5" if quick else "15"
    http = ["bench.http_compare", "--seconds", seconds, "--clients", "16", "64"]
    if profile_dir:
        http += ["--profile", str(profile_dir.relative_to(HERE.parent))]  # steps run there
    return {
        "split": (
            ["bench.split_cores", "--seconds", seconds, "--clients", "16", "64"],
            1500,
        ),
        "phases": (["bench.phases", "--n", "500" if quick else "3000"], 900),
        "http": (http, 1200),
        "mlflow": (
            [
                "bench.mlflow_serve",
                "--venv",
                os.path.relpath(MLFLOW_VENV, HERE.parent),  # steps run there
                "--seconds",
                seconds,
                "--clients",
                "16",
                "64",
            ],
            600,
        ),
        "batch": (["bench.batch_copy", "--rows", "10000", "--repeat", "2" if quick else "3"], 900),
        "big": (
            [
                "bench.big_ledger",
                "--events",
                str(big_events or (50_000 if quick else 1_000_000)),
                "--lookups",
                "200" if quick else "500",
                "--repeat",
                "3",
            ],
            3600,
        ),
        "verify": (
            ["bench.verify", "--backend", "postgres", "-n", "100000" if quick else "1000000"],
            1500,
        ),
        **{
            f"scale{w}": (
                [
                    "bench.http_compare",
                    "--seconds",
                    seconds,
                    "--clients",
                    "64",
                    "--workers",
                    str(w),
                ],
                900,
            )
            for w in (1, 2, 4)
        },
        "standby": (["bench.standby", "--seconds", seconds], 900),
    }


def ensure_mlflow(timeout: float = 420) -> str | None:
    """The MLflow venv, created if missing; None when mlflow==3.17.2 does not install in time."""
    if (MLFLOW_VENV / "bin" / "mlflow").exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True, timeout=120)
        version = subprocess.run(
            [sys.executable, "-c", "import sklearn; print(sklearn.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            [
                str(MLFLOW_VENV / "bin" / "pip"),
                "install",
                "-q",
                "mlflow==3.17.2",
                f"scikit-learn=={version}",
            ],
            check=True,
            timeout=timeout,
            capture_output=True,
        )
        return None
    except (subprocess.SubprocessError, OSError) as error:
        return f"mlflow==3.17.2 did not install in {timeout:.0f} s ({type(error).__name__})"


def run_step(module_args: list[str], timeout: float) -> dict[str, Any]:
    """Run one figure's script; its JSON (last stdout line) or its raw output, and its wall time."""
    command = [sys.executable, "-m", *module_args]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": shlex.join(command[1:])}
    out: dict[str, Any] = {
        "command": shlex.join(["python", *command[1:]]),
        "wall_s": time.monotonic() - started,
    }
    lines = done.stdout.strip().splitlines()
    try:
        out["data"] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        out["text"] = done.stdout[-6000:]
    if done.returncode:
        out["error"] = f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"
    return out


def parse_verify(text: str) -> dict[str, float]:
    """Seconds of each timed phase in bench.verify's output."""
    found = {}
    for label in ("advance (build the chain)", "verify from the database"):
        match = re.search(re.escape(label) + r"\s+([\d.]+) s wall", text)
        if match:
            found[label] = float(match.group(1))
    events = re.search(r"postgresql\S*: ([\d,]+) events", text)
    if events:
        found["events"] = float(events.group(1).replace(",", ""))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small enough for a laptop (a few minutes)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the API workers under load")
    parser.add_argument("--only", nargs="+", choices=tuple(steps(False, None)))
    parser.add_argument(
        "--scale",
        action="store_true",
        help="also 1, 2 and 4 API processes, and reads on a standby (docs/SCALING.md)",
    )
    parser.add_argument(
        "--big-events", type=int, default=None, help="events of the large ledger (default 1M)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--rerun",
        nargs="+",
        choices=tuple(steps(False, None)),
        help="run only these steps again and keep the others from the last run's .json "
        "(the header says which steps ran when)",
    )
    args = parser.parse_args()
    profile_dir = HERE / "profiles" if args.profile else None
    plan = steps(args.quick, profile_dir, args.big_events)
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "quick": args.quick,
    }
    if args.rerun:
        results = json.loads(args.out.with_suffix(".json").read_text())
        results.setdefault("reruns", []).append(
            {"steps": args.rerun, "started": datetime.now(UTC).isoformat(timespec="seconds")}
        )
    for name, (module_args, timeout) in plan.items():
        chosen = args.rerun or args.only
        if (chosen and name not in chosen) or (
            not chosen and name.startswith(("scale", "standby")) and not args.scale
        ):
            continue
        if name == "mlflow" and (problem := ensure_mlflow()):
            results[name] = {"error": problem}
            continue
        print(f"[run_all] {name}: {shlex.join(module_args)}", file=sys.stderr, flush=True)
        results[name] = run_step(module_args, timeout)
        if name == "verify" and "text" in results[name]:
            results[name]["data"] = parse_verify(results[name]["text"])
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    if args.rerun:
        results["reruns"][-1]["finished"] = finished
    else:
        results["load_after"] = os.getloadavg()
        results["finished"] = finished
    argv = sys.argv[1:]
    if args.rerun:  # the run's own command; the reruns are listed beside it
        at = argv.index("--rerun")
        argv = argv[:at] + argv[at + 1 + len(args.rerun) :]
    command = results.get("command") or "python -m bench.run_all" + " ".join([""] + argv)
    results["command"] = command
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    args.out.write_text(render(results, command, profile_dir))
    print(f"[run_all] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
