"""gthread with one read deadline per request, so slow clients cannot hold every thread.

gunicorn bounds none of a thread's reads: a client that sends its headers and part of its
body, then nothing, holds a thread for as long as it likes, and sixteen of them hold a
2 x 8 server. Here each request must arrive in full (headers and body) within
`Settings.body_timeout_seconds` of being queued for a thread; a read still waiting then
ends the request with 408. The clock starts when the connection is queued, not when a
thread takes it, so connections waiting behind slow ones expire too: every thread is free
again within the bound and a request behind them (a health check) is answered.

The deadline applies to plain sockets (TLS ends at the reverse proxy, deploy/nginx/).
"""

from __future__ import annotations

import logging
import math
import socket
import time
from typing import Any

import orjson
from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, TConn, ThreadWorker

from api.errors import PROBLEM, Problem, problem_body
from ledger.settings import Settings

log = logging.getLogger("api.slow_clients")

# How long a closing connection is drained of what its client still sends (gunicorn's own
# figure), so that the answer is not cut by a reset.
LINGER_SECONDS = 2.0


class RequestTimeout(Problem):
    """The request did not arrive in full within the bound (408, then the connection closes)."""

    def __init__(self, bound: float):
        super().__init__(
            408,
            "request_timeout",
            f"the request did not arrive in full within {bound:g} s; send the body without "
            "pauses, or through a reverse proxy that buffers it",
            "body",
            limit_seconds=bound,
        )


class DeadlineSocket(socket.socket):
    """A client socket whose every recv() ends by one deadline, however slowly bytes come.

    A per-recv timeout would not do: a client sending a byte every few seconds never trips
    it. Past the deadline a recv still gets bytes already received, never waits for more.
    """

    deadline: float | None = None
    bound: float = math.inf

    @classmethod
    def adopt(cls, sock: socket.socket) -> DeadlineSocket:
        timeout = sock.gettimeout()
        adopted = cls(fileno=sock.detach())
        adopted.settimeout(timeout)
        return adopted

    def arm(self, bound: float) -> None:
        self.bound = bound
        self.deadline = time.monotonic() + bound

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.deadline is None:
            return super().recv(size, flags)
        prior = self.gettimeout()
        remaining = max(0.0, self.deadline - time.monotonic())
        ours = prior is None or remaining <= prior
        self.settimeout(remaining if ours else prior)
        try:
            return super().recv(size, flags)
        except (TimeoutError, BlockingIOError):
            if not ours:
                raise  # the caller's own, shorter timeout
            raise RequestTimeout(self.bound) from None
        finally:
            self.settimeout(prior)


class BoundedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, each request read under one deadline."""

    def init_process(self) -> None:
        settings = getattr(self.app, "settings", None) or Settings.at_start()
        self.bound = settings.body_timeout_seconds
        super().init_process()

    def enqueue_req(self, conn: TConn) -> None:
        """The deadline starts here, before the connection waits for a thread."""
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket.adopt(conn.sock)
        conn.sock.arm(self.bound)
        super().enqueue_req(conn)

    def handle(self, conn: TConn) -> Any:
        sock = conn.sock
        if not conn.initialized and not conn.data_ready:
            # gunicorn waits up to DEFAULT_WORKER_DATA_TIMEOUT for a first byte; not past the
            # deadline, or connections queued behind idle ones would each take that long.
            remaining = sock.deadline - time.monotonic()
            if remaining < DEFAULT_WORKER_DATA_TIMEOUT and not conn.wait_for_data(
                max(0.0, remaining)
            ):
                self.linger(sock)
                return False
        result = super().handle(conn)
        if result is False:
            self.linger(sock)
        return result

    def linger(self, sock: DeadlineSocket) -> None:
        """Half-close and drain here, not in the main loop (gunicorn's close_graceful blocks it).

        The drain ends by the request's deadline too, so a client that neither sends nor
        closes cannot keep this thread; reads shut, gunicorn's close that follows is instant.
        """
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.deadline = min(sock.deadline or math.inf, time.monotonic() + LINGER_SECONDS)
            while sock.recv(65536):
                pass
        except (RequestTimeout, OSError):
            pass
        finally:
            sock.deadline = None
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """A request cut while its headers were still arriving: 408 as problem+json too."""
        if not isinstance(exc, RequestTimeout):
            super().handle_error(req, client, addr, exc)
            return
        log.warning(
            "request headers not received within %g s from %s", exc.extra["limit_seconds"], addr
        )
        body = orjson.dumps(
            problem_body(408, exc.problem_code, exc.description or "", exc.field, **exc.extra)
        )
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            f"Content-Type: {PROBLEM}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            client.sendall(head.encode() + body)
        except OSError:
            pass
