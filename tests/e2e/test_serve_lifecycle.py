"""`ledger serve` from a person's side: a taken port, JSON log lines, and a quick Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.server import Server, ledger_cli

pytestmark = pytest.mark.slow


def test_a_taken_port_is_refused_in_one_line_before_anything_starts(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", port=port)
        done = subprocess.run(
            ledger_cli("serve", "--demo", "--port", str(port)),
            cwd=tmp_path,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert done.stdout == ""  # no keys, no URL
    [line] = done.stderr.splitlines()
    assert f"port {port}" in line and "--port" in line and "PORT=" in line
    assert not (tmp_path / "demo-keys.json").exists()


def test_every_log_line_is_json_and_ctrl_c_stops_everything_quietly(tmp_path: Path):
    server = Server(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    env = {**server.env, "LEDGER_DIGEST_INTERVAL_SECONDS": "2"}
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            server.command("--demo"),
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + 120
        while "sidecar started" not in err.read_text() or "Booting worker" not in err.read_text():
            assert process.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            time.sleep(0.3)
        time.sleep(5)  # the sidecars' children say something, a digest is written
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: every process in the group
        started = time.monotonic()
        process.wait(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    said = err.read_text()
    assert stopped_in < 10, said[-3000:]
    assert "SIGKILL" not in said and "Traceback" not in said, said[-3000:]
    lines = [line for line in said.splitlines() if line.strip()]
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert any(json.loads(line).get("sidecar") == "projector" for line in lines)
    assert "API http://" in out.read_text()
    children = [json.loads(line)["pid"] for line in lines if "sidecar started" in line]
    assert children and not [pid for pid in children if alive(pid)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
