"""bench/RESULTS.md from run_all's measurements: one row per figure, baseline, ratio, target, met."""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.profile_summary import markdown as profile_markdown

# `mlflow models serve` (MLflow 3.17.2, the same kind of 2-core machine, wrk): req/s measured
# before this project, shown when bench.mlflow_serve cannot run here.
MLFLOW_MEASURED = (55.0, 155.0)
REGENERATE = "make bench"


class Table:
    """Rows of figure | value | baseline | ratio | target | met | command."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(
        self,
        figure: str,
        value: str,
        baseline: str,
        ratio: str,
        target: str,
        met: bool | None,
        command: str,
    ) -> None:
        verdict = "n/a" if met is None else ("**met**" if met else "**missed**")
        self.rows.append(
            f"| {figure} | {value} | {baseline} | {ratio} | {target} | {verdict} | `{command}` |"
        )

    def render(self) -> str:
        head = [
            "| figure | value | baseline (same run) | ratio | target | met | command |",
            "|---|---|---|---|---|---|---|",
        ]
        return "\n".join(head + self.rows)


def http_runs(data: dict[str, Any], label: str, clients: int) -> dict[str, float]:
    """The mean of the alternated runs of one server at one concurrency."""
    runs = [r for r in data["runs"] if r["recording"] == label and r["clients"] == clients]
    return {
        k: statistics.mean(r[k] for r in runs)
        for k in (
            "requests_per_s",
            "p50_ms",
            "p99_ms",
            "server_cpu_ms_per_request",
            "postgres_cpu_ms_per_request",
            "errors",
        )
    }


# The targets, each a ratio or a bound checked against a figure measured in the same run.
SPLIT_THROUGHPUT, SPLIT_P99 = 0.8, 1.5  # recording on / off, API and database on their own cores
RECORDING_API_CPU_MS, RECORDING_DB_CPU_MS = 0.3, 0.2  # per prediction, on less off
SHARED_THROUGHPUT, SHARED_P99 = 0.7, 2.0  # recording on / off, all on two shared cores
SERVING_CPU_MS = 0.6  # no recording, API CPU per request
MLFLOW_THROUGHPUT, MLFLOW_CPU = 6.0, 1 / 6  # ours / `mlflow models serve`


def add_split(table: Table, step: dict[str, Any]) -> None:
    """API on core 0, PostgreSQL and wrk on core 1: recording's cost on each side, and the floor."""
    data, command = step.get("data"), step.get("command", "")
    if not data:
        table.add(
            "API and database on their own cores (bench.split_cores)",
            "failed",
            "",
            "",
            "",
            False,
            command,
        )
        return
    for clients in sorted({r["clients"] for r in data["runs"]}):
        on, off = http_runs(data, "on", clients), http_runs(data, "off", clients)
        where = f"{clients} clients, API on core {data['api_cpus']}, PostgreSQL on core {data['database_cpus']}"
        ratio = on["requests_per_s"] / off["requests_per_s"]
        table.add(
            f"recording-on throughput, {where}",
            f"{on['requests_per_s']:,.0f}/s",
            f"recording off: {off['requests_per_s']:,.0f}/s",
            f"{ratio:.2f}×",
            f"≥ {SPLIT_THROUGHPUT}×",
            ratio >= SPLIT_THROUGHPUT,
            command,
        )
        p99 = on["p99_ms"] / off["p99_ms"]
        table.add(
            f"p99 latency, {where} (p50 {on['p50_ms']:.1f} vs {off['p50_ms']:.1f} ms)",
            f"{on['p99_ms']:.1f} ms",
            f"recording off: {off['p99_ms']:.1f} ms",
            f"{p99:.2f}×",
            f"≤ {SPLIT_P99}×",
            p99 <= SPLIT_P99,
            command,
        )
        api = on["server_cpu_ms_per_request"] - off["server_cpu_ms_per_request"]
        table.add(
            f"recording's API CPU per prediction (on less off), {where}",
            f"{api:.3f} ms",
            f"API CPU/req: on {on['server_cpu_ms_per_request']:.3f}, off {off['server_cpu_ms_per_request']:.3f} ms",
            "",
            f"≤ {RECORDING_API_CPU_MS} ms",
            api <= RECORDING_API_CPU_MS,
            command,
        )
        db = on["postgres_cpu_ms_per_request"] - off["postgres_cpu_ms_per_request"]
        table.add(
            f"database CPU per recorded prediction (on less off; every process of the cluster), {where}",
            f"{db:.3f} ms",
            f"database CPU/req: on {on['postgres_cpu_ms_per_request']:.3f}, off {off['postgres_cpu_ms_per_request']:.3f} ms",
            "",
            f"≤ {RECORDING_DB_CPU_MS} ms",
            db <= RECORDING_DB_CPU_MS,
            command,
        )
    for clients in sorted({r["clients"] for r in data["runs"]}):
        off, floor = http_runs(data, "off", clients), http_runs(data, "floor", clients)
        cpu = off["server_cpu_ms_per_request"]
        table.add(
            f"serving without recording: API CPU per request, {clients} clients, API on its own core",
            f"{cpu:.3f} ms",
            f"bare-Falcon floor (bench/floor_app.py): {floor['server_cpu_ms_per_request']:.3f} ms",
            f"{cpu / floor['server_cpu_ms_per_request']:.1f}× the floor",
            f"≤ {SERVING_CPU_MS} ms",
            cpu <= SERVING_CPU_MS,
            command,
        )


def add_http(table: Table, step: dict[str, Any]) -> None:
    """Recording on vs off with the API, PostgreSQL and wrk on the same two cores."""
    data, command = step.get("data"), step.get("command", "")
    if not data:
        table.add("single-row predictions/s through gunicorn", "failed", "", "", "", False, command)
        return
    for clients in sorted({r["clients"] for r in data["runs"]}):
        on, off = http_runs(data, "on", clients), http_runs(data, "off", clients)
        ratio = on["requests_per_s"] / off["requests_per_s"]
        table.add(
            f"recording-on throughput, {clients} clients, 2 shared cores (PostgreSQL, fsync on)",
            f"{on['requests_per_s']:,.0f}/s (server CPU {on['server_cpu_ms_per_request']:.2f} ms/req)",
            f"recording off: {off['requests_per_s']:,.0f}/s ({off['server_cpu_ms_per_request']:.2f} ms/req)",
            f"{ratio:.2f}×",
            f"≥ {SHARED_THROUGHPUT}×",
            ratio >= SHARED_THROUGHPUT,
            command,
        )
        p99 = on["p99_ms"] / off["p99_ms"]
        table.add(
            f"p99 latency, {clients} clients, 2 shared cores (p50 {on['p50_ms']:.0f} vs {off['p50_ms']:.0f} ms)",
            f"{on['p99_ms']:.0f} ms",
            f"recording off: {off['p99_ms']:.0f} ms",
            f"{p99:.2f}×",
            f"≤ {SHARED_P99:g}×",
            p99 <= SHARED_P99,
            command,
        )


def add_rss(table: Table, step: dict[str, Any]) -> None:
    data, command = step.get("data") or {}, step.get("command", "")
    workers = [w["VmHWM"] for w in data.get("worker_rss_mib", {}).get("on", [])]
    if workers:
        table.add(
            "API worker RSS (peak of each worker, recording on)",
            ", ".join(f"{w:.0f} MiB" for w in workers),
            "—",
            "",
            "< 250 MB",
            max(workers) * 1.048576 < 250,
            command,
        )


def add_mlflow(table: Table, http: dict[str, Any], mlflow: dict[str, Any]) -> None:
    """Ours, recording on (API + PostgreSQL CPU), against `mlflow models serve` on the same model."""
    data = http.get("data")
    if not data:
        return
    for clients in sorted({r["clients"] for r in data["runs"]}):
        ours = http_runs(data, "on", clients)
        add_mlflow_row(table, mlflow, clients, ours)


def add_mlflow_row(
    table: Table, mlflow: dict[str, Any], clients: int, ours: dict[str, float]
) -> None:
    rate = ours["requests_per_s"]
    cpu = ours["server_cpu_ms_per_request"] + ours["postgres_cpu_ms_per_request"]
    runs = [r for r in (mlflow.get("data") or {}).get("runs", []) if r["clients"] == clients]
    if runs:
        theirs, their_cpu = runs[0]["requests_per_s"], runs[0]["server_cpu_ms_per_request"]
        table.add(
            f"ours (recording on) vs `mlflow models serve`, {clients} clients: throughput",
            f"{rate:,.0f}/s",
            f"MLflow 3.17.2: {theirs:,.0f}/s",
            f"{rate / theirs:.1f}×",
            f"≥ {MLFLOW_THROUGHPUT:g}×",
            rate / theirs >= MLFLOW_THROUGHPUT,
            mlflow.get("command", ""),
        )
        table.add(
            f"ours (recording on) vs `mlflow models serve`, {clients} clients: CPU per request "
            "(ours: API + PostgreSQL)",
            f"{cpu:.2f} ms",
            f"MLflow 3.17.2: {their_cpu:.2f} ms",
            f"{cpu / their_cpu:.2f}×",
            "≤ 1/6 (0.17×)",
            cpu / their_cpu <= MLFLOW_CPU,
            mlflow.get("command", ""),
        )
        return
    low, high = MLFLOW_MEASURED
    table.add(
        f"ours (recording on) vs MLflow, {clients} clients",
        f"{rate:,.0f}/s",
        f"MLflow **not run here** ({mlflow.get('error', 'no data')[:120]}); measured earlier on this kind of machine: {low:.0f}–{high:.0f}/s",
        f"{rate / high:.1f}–{rate / low:.1f}×",
        f"≥ {MLFLOW_THROUGHPUT:g}×",
        rate / high >= MLFLOW_THROUGHPUT,
        "an earlier run of `mlflow models serve`",
    )


def add_batch(table: Table, step: dict[str, Any]) -> None:
    data = step.get("data")
    if not data:
        table.add(
            "batch of 10,000 rows scored and recorded",
            "failed",
            "",
            "",
            "",
            False,
            step.get("command", ""),
        )
        return
    table.add(
        f"batch of {data['rows']:,} rows scored and recorded (in-process API)",
        f"{data['ledger_rows_per_s']:,.0f} rows/s ({data['ledger_wall_s']:.2f} s)",
        f"psycopg2 COPY of the same stored rows: {data['copy_rows_per_s']:,.0f} rows/s",
        f"{data['ratio']:.2f}×",
        "≥ 0.5×",
        data["ratio"] >= 0.5,
        step["command"],
    )


def add_big(table: Table, step: dict[str, Any]) -> None:
    data, command = step.get("data"), step.get("command", "")
    if not data:
        table.add(
            "1M-event figures (rebuild, as_of, provenance, RSS)",
            "failed",
            "",
            "",
            "",
            False,
            command,
        )
        return
    events = data["events"]
    report = data.get("rebuild_report", "")
    raw = re.search(r"\| raw read \+ orjson decode \| ([\d,]+) \|", report)
    rebuilt = re.search(
        r"\| rebuild predictions \(([\d.]+) s\) \| ([\d,]+) \|.*?\| ([\d.]+)× \|", report
    )
    if raw and rebuilt:
        ratio = float(rebuilt.group(3))
        table.add(
            f"projection rebuild (predictions) of {events:,} events",
            f"{rebuilt.group(2)} events/s",
            f"raw read + decode: {raw.group(1)} events/s",
            f"{ratio:.2f}×",
            "≥ 0.5×",
            ratio >= 0.5,
            command,
        )
    worst = max(data["as_of"], key=lambda r: r["worst_ratio"])
    table.add(
        f"as_of vs now on {events:,} events (worst of {len(data['as_of'])} reads: {worst['read']})",
        f"{max(worst['as_of_middle_ms'], worst['as_of_recent_ms']):.1f} ms",
        f"now: {worst['now_ms']:.1f} ms",
        f"{worst['worst_ratio']:.2f}×",
        "≤ 2×",
        worst["worst_ratio"] <= 2,
        command,
    )
    look = data["provenance"]
    table.add(
        f"provenance lookup (GET /v1/predictions/{{id}}), {events:,} events stored",
        f"p99 {look['p99_ms']:.1f} ms (p50 {look['p50_ms']:.1f})",
        "—",
        "",
        "p99 < 10 ms",
        look["p99_ms"] < 10,
        command,
    )
    for key, label in (
        ("rebuild_child", "`ledger project --rebuild predictions`"),
        ("export_child", "`ledger export`"),
    ):
        run = data.get(key, {})
        peak = run.get("peak_rss_mib")
        ok = run.get("exit") == 0 and peak is not None
        table.add(
            f"peak RSS of {label} over {events:,} events",
            f"{peak:.0f} MiB" if peak else "failed",
            "—",
            "",
            "< 300 MB",
            ok and peak * 1.048576 < 300,
            command,
        )


def add_verify(table: Table, step: dict[str, Any]) -> None:
    data = step.get("data") or {}
    seconds = data.get("verify from the database")
    if seconds is None:
        table.add(
            "`ledger verify` of 1M events", "failed", "", "", "", False, step.get("command", "")
        )
        return
    table.add(
        f"verify (notary) of {data.get('events', 0):,.0f} events from the database",
        f"{seconds:.1f} s",
        f"chain build (advance): {data.get('advance (build the chain)', 0):.1f} s",
        "",
        "< 20 s",
        seconds < 20,
        step["command"],
    )


def render(results: dict[str, Any], command: str, profile_dir: Path | None) -> str:
    table = Table()
    if "split" in results:
        add_split(table, results["split"])
    if "http" in results:
        add_http(table, results["http"])
        add_mlflow(table, results["http"], results.get("mlflow", {}))
    if "batch" in results:
        add_batch(table, results["batch"])
    if "big" in results:
        add_big(table, results["big"])
    if "verify" in results:
        add_verify(table, results["verify"])
    if "http" in results:
        add_rss(table, results["http"])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    parts = [
        "# Benchmark results",
        "",
        f"Regenerate from a clean clone with `{REGENERATE}` (it makes the venv, installs wrk, then "
        "runs `python -m bench.run_all --profile`: about 30 minutes on 2 cores; add `--scale` for 1, 2 "
        "and 4 API processes and reads on a standby, about 8 minutes more; `--quick --only STEP...` "
        "for a few of the figures at small sizes). It needs PostgreSQL 15 at 127.0.0.1:5432 (trust) "
        "and its binaries for the split-core cluster; the MLflow baseline installs its own venv.",
        "",
        f"Made by `{command}` at commit {commit}, {results['started']} → {results['finished']} UTC"
        f"{' (quick mode: small sizes)' if results.get('quick') else ''}."
        + "".join(
            f" Run again with `--rerun {' '.join(r['steps'])}`: {r['started']} → "
            f"{r.get('finished', '?')} UTC."
            for r in results.get("reruns", [])
        ),
        f"Machine: 2 shared cores; load average {results['load_before'][0]:.1f} before, "
        f"{results['load_after'][0]:.1f} after. Every ratio compares two figures measured in the same run;",
        "absolute numbers are noisy. Raw measurements: the .json file beside this one.",
        "",
        table.render(),
        "",
    ]
    parts += errors(results)
    if "phases" in results and results["phases"].get("data"):
        parts += phases_detail(results["phases"])
    if "split" in results and results["split"].get("data"):
        parts += split_detail(results["split"]["data"])
    if "http" in results and results["http"].get("data"):
        parts += http_detail(results["http"]["data"])
    parts += scale_detail(results)
    parts += standby_detail(results)
    if "big" in results and results["big"].get("data"):
        parts += ["## Rebuild detail", "", results["big"]["data"].get("rebuild_report", ""), ""]
        parts += as_of_detail(results["big"]["data"])
    if profile_dir and profile_dir.exists():
        for path in sorted(profile_dir.glob("*.txt")):
            parts += [
                f"## py-spy, one API worker under load, recording {path.stem} (busy samples)",
                "",
                profile_markdown(path, 30),
                "",
            ]
    return "\n".join(parts) + "\n"


def errors(results: dict[str, Any]) -> list[str]:
    lines = [
        f"- **{name}**: {step['error'][:600]}"
        for name, step in results.items()
        if isinstance(step, dict) and step.get("error")
    ]
    return ["## Errors", "", *lines, ""] if lines else []


def phases_detail(step: dict[str, Any]) -> list[str]:
    """CPU per single-row request by phase, through the product's own functions (bench/phases.py)."""
    from bench.phases import report

    return [
        "## Where a single-row request's CPU goes, by phase (in-process)",
        "",
        f"`{step.get('command', '')}`: each phase is the named function of the product, called on "
        "n distinct requests in a loop of its own that drops what each call returns, as a "
        'server does; indented rows are parts of the bold row above them, and a "rest" row '
        "(the whole less its parts) also holds what running the parts together costs beyond "
        "running each alone (caches, the garbage collector). Each middleware's row is its hooks' "
        "CPU in an end-to-end run of their own, every hook wrapped in a clock whose own cost is "
        "taken off.",
        "",
        *report(step["data"]),
        "",
    ]


def split_detail(data: dict[str, Any]) -> list[str]:
    rows = [
        "## API and PostgreSQL on their own cores, every run (alternated: floor, off, on)",
        "",
        f"{data['workers']} workers × {data['threads']} threads (gthread) on core {data['api_cpus']}; "
        f"a throwaway PostgreSQL 15 cluster (fsync on) on core {data['database_cpus']}, wrk -t2 beside it; "
        f"{data['seconds']:.0f} s a run. CPU from /proc: the API's master and workers, every process of "
        "the cluster. Core busy: the share of each core's time busy (anything, other load included).",
        "",
        "| server | clients | req/s | p50 ms | p99 ms | API CPU ms/req | database CPU ms/req | core 0 busy | core 1 busy | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        busy = r.get("core_busy_share") or [float("nan")] * 2
        rows.append(
            f"| {r['recording']} | {r['clients']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['server_cpu_ms_per_request']:.3f} | "
            f"{r['postgres_cpu_ms_per_request']:.3f} | {busy[0]:.2f} | {busy[1]:.2f} | {r['errors']} |"
        )
    return rows + [""]


def http_detail(data: dict[str, Any]) -> list[str]:
    rows = [
        "## Two shared cores (API, PostgreSQL and wrk together), every run (alternated: off, on, off, on)",
        "",
        f"{data['workers']} workers × {data['threads']} threads (gthread), wrk -t2, {data['seconds']:.0f} s a run.",
        "",
        "| recording | clients | req/s | p50 ms | p90 ms | p99 ms | server CPU ms/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {r['recording']} | {r['clients']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
        f"{r['p99_ms']:.1f} | {r['server_cpu_ms_per_request']:.2f} | {r['errors']} |"
        for r in data["runs"]
    ]
    return rows + [""]


def scale_detail(results: dict[str, Any]) -> list[str]:
    """Recording on vs off with 1, 2 and 4 API processes (64 clients) on one PostgreSQL."""
    rows = []
    for w in (1, 2, 4):
        data = (results.get(f"scale{w}") or {}).get("data")
        if data:
            on, off = http_runs(data, "on", 64), http_runs(data, "off", 64)
            rows.append(
                f"| {w} | {on['requests_per_s']:,.0f} | {off['requests_per_s']:,.0f} | "
                f"{on['requests_per_s'] / off['requests_per_s']:.2f}× | {on['p99_ms']:.0f} | {off['p99_ms']:.0f} | "
                f"{on['server_cpu_ms_per_request']:.2f} |"
            )
    if not rows:
        return []
    return [
        "## Scale-out: API processes on one PostgreSQL (64 clients)",
        "",
        "| processes | on req/s | off req/s | ratio | on p99 ms | off p99 ms | on CPU ms/req |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def standby_detail(results: dict[str, Any]) -> list[str]:
    """Writes and auditor reads at once, reads on the primary vs on the streaming standby."""
    data = (results.get("standby") or {}).get("data")
    if not data:
        return []
    rows = [
        "## Reads on a streaming hot standby (bench/standby.py)",
        "",
        f"{data['writers']} clients predicting and {data['readers']} auditors reading at once, "
        f"{data['seconds']:.0f} s a run; CPU in cores busy.",
        "",
        "| reads on | writes/s | write p99 ms | reads/s | read p50 ms | read p99 ms | primary CPU | "
        "standby CPU | API CPU | replay lag max ms | reads served by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["runs"]:
        w, rd, cpu = r["writes"], r["reads"], r["cpu_per_s"]
        served = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["reads_served_by"].items()) if v)
        rows.append(
            f"| {r['reads_on']} | {w['requests_per_s']:,.0f} | {w['p99_ms']:.0f} | {rd['requests_per_s']:,.0f} | "
            f"{rd['p50_ms']:.1f} | {rd['p99_ms']:.0f} | {cpu['primary']:.2f} | {cpu['standby']:.2f} | "
            f"{cpu['api']:.2f} | {r['lag_s']['max'] * 1000:.0f} | {served} |"
        )
    return rows + [""]


def as_of_detail(data: dict[str, Any]) -> list[str]:
    rows = [
        "## as_of vs now, every read (median ms)",
        "",
        "| read | now | as_of middle | as_of head-50 | worst ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {r['read']} | {r['now_ms']:.1f} | {r['as_of_middle_ms']:.1f} | {r['as_of_recent_ms']:.1f} | "
        f"{r['worst_ratio']:.2f}× |"
        for r in data["as_of"]
    ]
    return rows + [""]
