"""Slow clients cannot take the server: every request must arrive within the read bound.

A real `ledger serve` (2 workers x 4 threads) with LEDGER_BODY_TIMEOUT_SECONDS=3 on
loopback. Clients that send part of a request, then nothing, get 408 at the bound (or,
having sent nothing, are closed) and meanwhile /healthz keeps answering.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.e2e.server import Server
from tests.reliability.support import issue_keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
BOUND = 3.0
MARGIN = 2.0  # scheduling on a shared machine; the deadline itself is exact
SLOW_CLIENTS = 64


@dataclass
class Served:
    server: Server
    admin: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{home / 'ledger.db'}"
    keys = issue_keys(home, url)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEDGER_BODY_TIMEOUT_SECONDS", str(BOUND))
        server = Server(home, url).start()
    try:
        yield Served(server, keys["admin"])
    finally:
        server.stop()


def head(served: Served, length: int) -> bytes:
    return (
        "POST /v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {served.admin}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.server.port), timeout=30)


def answer_of(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic()


def assert_408(data: bytes) -> None:
    status, _, rest = data.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"content-type: application/problem+json" in headers.lower()
    problem = json.loads(body)
    assert problem["code"] == "request_timeout" and problem["limit_seconds"] == BOUND


def healthz_seconds(served: Served) -> float:
    started = time.monotonic()
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, _ = answer_of(sock, BOUND + 30)
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    return time.monotonic() - started


def test_slow_clients_are_cut_at_the_bound_and_healthz_answers_meanwhile(served) -> None:
    """Half send part of a body, a quarter part of their headers, a quarter nothing at all."""
    started = time.monotonic()
    slow = []
    for i in range(SLOW_CLIENTS):
        sock = connect(served)
        request = head(served, 1000) + b'{"name": "sl'
        sent = request if i % 2 == 0 else request[:30] if i % 4 == 1 else b""
        sock.sendall(sent)  # then nothing, never closing
        slow.append((sent, sock))
    with ThreadPoolExecutor(SLOW_CLIENTS) as readers:  # each closing time, as it happens
        answered = [readers.submit(answer_of, sock, BOUND + 30) for _, sock in slow]
        probes = []
        while time.monotonic() - started < BOUND + 1:
            probes.append(healthz_seconds(served))
            time.sleep(0.2)
        answers = [
            (sent, *reading.result()) for (sent, _), reading in zip(slow, answered, strict=True)
        ]
    for _, sock in slow:
        sock.close()
    last = max(closed for _, _, closed in answers) - started
    print(f"\n/healthz: {len(probes)} answers, slowest {max(probes):.2f} s")
    print(f"{SLOW_CLIENTS} slow clients: the last one closed {last:.2f} s after the first sent")
    assert max(probes) <= BOUND + MARGIN, f"/healthz took {max(probes):.2f} s"
    for sent, data, closed in answers:
        if sent:
            assert_408(data)
            assert BOUND - 0.1 <= closed - started, closed - started
        else:
            assert data == b"", data[:200]  # nothing to answer: closed
        assert closed - started <= BOUND + MARGIN, closed - started


def trickle(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    """One byte every `every` seconds until the server stops listening."""
    for byte in data:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


@pytest.mark.parametrize("part", ["body", "headers"])
def test_a_client_trickling_a_byte_a_second_is_cut_at_the_bound(served, part) -> None:
    body = b'{"name": "trickled", "task": "classification"}'
    whole = head(served, len(body)) + body
    sent_at_once = whole[: len(head(served, len(body)))] if part == "body" else whole[:20]
    stop = threading.Event()
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(sent_at_once)
        feeder = threading.Thread(
            target=trickle, args=(sock, whole[len(sent_at_once) :], 1.0, stop), daemon=True
        )
        feeder.start()
        data, closed = answer_of(sock, BOUND + 30)
        stop.set()
        feeder.join()
    assert_408(data)
    assert closed - started <= BOUND + MARGIN, f"cut after {closed - started:.2f} s"


def test_a_body_sent_after_a_pause_within_the_bound_is_served(served) -> None:
    deployment = {
        "name": "paused",
        "task": "classification",
        "positive_label": 1,
        "schema": {"features": [{"name": "x", "type": "number"}]},
    }
    body = json.dumps(deployment).encode()
    with connect(served) as sock:
        sock.sendall(head(served, len(body)))
        time.sleep(BOUND / 2)
        sock.sendall(body)
        data, _ = answer_of(sock, 30)
    assert data.startswith(b"HTTP/1.1 201"), data[:300]
