"""One writer process per host: every gunicorn worker's inserts, batched away from their GIL.

A writer thread inside a worker shares that worker's GIL with its request threads: each
batch it encodes, adapts for psycopg2 and wakes callers from is time the request threads
wait for, and its round trips hand the GIL back and forth. Here the request thread sends
its already-encoded events as one length-prefixed frame over a unix socket of its own and
blocks in recv (the GIL released) until the writer process answers with their positions,
or with why they were not recorded. The writer process batches whatever frames arrived
while its previous commit ran and inserts them with the same BatchWriter and the same
bisection of conflicts as the writer thread (ledger/group_commit.commit_group), so
acknowledged still means committed and commit order still equals position order.

The gunicorn master starts it (WriterSupervisor) before the workers and starts another when
it dies; a caller whose frame was in flight then gets OperationalError (503 upstream: its
events may or may not be recorded, and a retry with the same request id tells which).

Frames: request = u32 length, u32 count, then per event a 16-byte originator id, u32
version, u16 topic length, u32 state length, topic, state. Reply = u32 length, one status
byte, then u32 count and i64 positions (OK) or a UTF-8 message (CONFLICT, FAILED).
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.fd_wait import readable
from ledger.group_commit import Insert, commit_group

log = logging.getLogger("ledger.writer_process")

# Exported by the gunicorn master to its workers: where this host's writer listens. Not a
# setting: it names a socket the master made, and means nothing outside that master's tree.
SOCKET_ENV = "LEDGER_WRITER_SOCKET"

LENGTH = struct.Struct("!I")
COUNT = struct.Struct("!I")
EVENT = struct.Struct("!16sIHI")
POSITION = struct.Struct("!q")
OK, CONFLICT, FAILED = 0, 1, 2
MAX_FRAME = 1 << 30
# How long a caller waits for a writer that is (re)starting before answering unavailable.
CONNECT_SECONDS = 10.0


def inherited_socket() -> str | None:
    """The writer's socket when this process is a worker of a master that runs one."""
    return os.environ.get(SOCKET_ENV) or None


# -- frames --------------------------------------------------------------------------------
def encode_events(events: Sequence[StoredEvent]) -> bytes:
    """One request frame: the events exactly as they will be stored."""
    parts = [b"", COUNT.pack(len(events))]
    for e in events:
        topic = e.topic.encode()
        oid = e.originator_id
        raw = oid.bytes if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid)).bytes
        parts += (EVENT.pack(raw, e.originator_version, len(topic), len(e.state)), topic, e.state)
    body = b"".join(parts)
    return LENGTH.pack(len(body)) + body


def decode_events(body: bytes | memoryview) -> list[StoredEvent]:
    """The events of one request frame's body (after its length)."""
    view = memoryview(body)
    (count,) = COUNT.unpack_from(view, 0)
    at, events = COUNT.size, []
    for _ in range(count):
        raw, version, topic_len, state_len = EVENT.unpack_from(view, at)
        at += EVENT.size
        topic = bytes(view[at : at + topic_len]).decode()
        at += topic_len
        state = bytes(view[at : at + state_len])
        at += state_len
        events.append(StoredEvent(uuid.UUID(bytes=raw), version, topic, state))
    if at != len(view):
        raise ValueError("a frame's length does not match its events")
    return events


def encode_reply(ids: Sequence[int], error: BaseException | None) -> bytes:
    if error is None:
        body = bytes([OK]) + COUNT.pack(len(ids)) + b"".join(POSITION.pack(i) for i in ids)
    else:
        status = CONFLICT if isinstance(error, IntegrityError) else FAILED
        body = bytes([status]) + (str(error) or type(error).__name__).encode()
    return LENGTH.pack(len(body)) + body


def decode_reply(body: bytes) -> list[int]:
    """The positions of an OK reply; the error a CONFLICT or FAILED reply stands for, raised."""
    status = body[0]
    if status == OK:
        (count,) = COUNT.unpack_from(body, 1)
        return [
            POSITION.unpack_from(body, 1 + COUNT.size + POSITION.size * i)[0] for i in range(count)
        ]
    message = body[1:].decode(errors="replace")
    if status == CONFLICT:
        raise IntegrityError(message)
    raise OperationalError(f"the writer process could not record the events: {message}")


def _read_reply(sock: socket.socket) -> bytes:
    """One reply's body; a single recv for any ordinary reply."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the writer process closed the connection")
        data += chunk
        if len(data) >= LENGTH.size:
            (length,) = LENGTH.unpack_from(data, 0)
            if len(data) >= LENGTH.size + length:
                return data[LENGTH.size : LENGTH.size + length]


# -- the workers' side ---------------------------------------------------------------------
class WriterClient:
    """Submit as GroupCommitter does, to the host's writer process: one socket per thread."""

    def __init__(self, path: str, connect_seconds: float = CONNECT_SECONDS):
        self.path = path
        self.connect_seconds = connect_seconds
        self._local = threading.local()

    def submit(self, events: Sequence[StoredEvent], timeout: float = 60.0) -> Sequence[int]:
        """Insert the events atomically with others' and return their notification ids."""
        if not events:
            return []
        frame = encode_events(events)
        sock = self._socket(timeout)
        try:
            try:
                sock.sendall(frame)
            except OSError:
                # The writer closed this socket (it was replaced since this thread's last
                # call) before any of the frame was read, so it cannot have committed it.
                self._drop()
                sock = self._socket(timeout)
                sock.sendall(frame)
            body = _read_reply(sock)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            self._drop()  # a late answer must not be read as the next call's
            raise OperationalError(
                f"no acknowledgement within {timeout} s; the events may yet be recorded"
            ) from None
        except (OSError, EOFError) as error:
            self._drop()
            raise OperationalError(
                f"the writer process was lost before it answered ({error}); "
                "the events may or may not be recorded"
            ) from None
        return decode_reply(body)

    def close(self) -> None:
        """Close this thread's socket (others close with their threads)."""
        self._drop()

    def _socket(self, timeout: float) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is None or self._local.pid != os.getpid():
            sock = self._connect()
            self._local.sock, self._local.pid, self._local.timeout = sock, os.getpid(), None
        if self._local.timeout != timeout:
            # A kernel timeout on a blocking socket: Python's own (settimeout) would poll()
            # before every send and recv, two more system calls per prediction.
            seconds = int(timeout)
            micros = int((timeout - seconds) * 1e6)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros)
            )
            self._local.timeout = timeout
        return sock

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self.connect_seconds
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as error:
                sock.close()
                if time.monotonic() >= deadline:
                    raise OperationalError(
                        f"the writer process is not accepting at {self.path}: {error}"
                    ) from None
                time.sleep(0.05)

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None and getattr(self._local, "pid", 0) == os.getpid():
            try:
                sock.close()
            except OSError:
                pass
        self._local.sock = None


# -- the writer process ----------------------------------------------------------------------
class _Caller:
    """One frame's events; answered on the socket it came by."""

    __slots__ = ("sock", "events")
    events: list[StoredEvent]

    def __init__(self, sock: socket.socket, events: list[StoredEvent]):
        self.sock, self.events = sock, events

    def finish(self, ids: Sequence[int] = (), error: BaseException | None = None) -> None:
        try:
            self.sock.sendall(encode_reply(ids, error))
        except OSError:
            pass  # its worker died: that worker's client never got an answer, and retries


def serve(
    path: str,
    insert: Insert,
    max_events: int = 2000,
    life_fd: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Accept workers' frames on `path` and commit them in groups, until `life_fd` reads EOF.

    `life_fd` is the read end of a pipe whose write end the master and its workers hold:
    EOF means every one of them is gone, so nobody can send another frame.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(1024)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    if life_fd is not None:
        sel.register(life_fd, selectors.EVENT_READ, "life")
    buffers: dict[socket.socket, bytearray] = {}
    pending: deque[_Caller] = deque()
    alive = True
    while alive or pending:
        for key, _ in sel.select(0 if pending else None):
            if key.data == "accept":
                conn, _ = listener.accept()
                sel.register(conn, selectors.EVENT_READ, "conn")
                buffers[conn] = bytearray()
            elif key.data == "life":
                assert life_fd is not None
                if not os.read(life_fd, 4096):
                    sel.unregister(life_fd)
                    alive = False
            else:
                _read(key.fileobj, buffers, pending, sel)  # type: ignore[arg-type]
        if pending:
            batch, count = [], 0
            while pending and count < max_events:
                batch.append(pending.popleft())
                count += len(batch[-1].events)
            commit_group(insert, batch, on_batch)
    for sock in list(buffers):
        sock.close()
    listener.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read(
    sock: socket.socket,
    buffers: dict[socket.socket, bytearray],
    pending: deque[_Caller],
    sel: selectors.BaseSelector,
) -> None:
    try:
        data = sock.recv(1 << 20)
    except OSError:
        data = b""
    buffer = buffers[sock]
    if not data:  # the caller's worker closed it, or died: its half frame is dropped
        sel.unregister(sock)
        del buffers[sock]
        sock.close()
        return
    buffer += data
    while len(buffer) >= LENGTH.size:
        (length,) = LENGTH.unpack_from(buffer, 0)
        if length > MAX_FRAME:
            log.error("a frame of %d bytes refused; connection closed", length)
            _read_failed(sock, buffers, sel)
            return
        if len(buffer) < LENGTH.size + length:
            return
        body = bytes(buffer[LENGTH.size : LENGTH.size + length])
        del buffer[: LENGTH.size + length]
        try:
            pending.append(_Caller(sock, decode_events(body)))
        except (ValueError, struct.error) as error:
            log.error("a malformed frame refused (%s); connection closed", error)
            _read_failed(sock, buffers, sel)
            return


def _read_failed(
    sock: socket.socket, buffers: dict[socket.socket, bytearray], sel: selectors.BaseSelector
) -> None:
    sel.unregister(sock)
    del buffers[sock]
    sock.close()


def main(argv: list[str]) -> int:
    """`python -m ledger.writer_process SOCKET LIFE_FD`: what WriterSupervisor runs."""
    from ledger.database import create_engine
    from ledger.lean_insert import EVENTS_TABLE, BatchWriter
    from ledger.settings import Settings

    path, life_fd = argv[0], int(argv[1])
    # The workers' graceful stop needs the writer until the last of them is gone: the
    # writer leaves when the life pipe closes, not on the signals its process group gets.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings = Settings.at_start()
    engine = create_engine(settings.database_url)
    writer = BatchWriter(engine, channel_name(EVENTS_TABLE))
    try:
        serve(path, writer.insert, settings.group_commit_max_events, life_fd)
    finally:
        writer.close()
        engine.dispose()
    try:
        os.rmdir(os.path.dirname(path))  # the supervisor's private directory, now empty
    except OSError:
        pass
    return 0


def channel_name(events_table: str) -> str:
    """The NOTIFY channel the recorder listens on (eventsourcing-sqlalchemy's derivation)."""
    return events_table.replace(".", "_")


# -- the master's side -------------------------------------------------------------------------
class WriterSupervisor:
    """Starts the writer process, starts another whenever it dies, stops it last.

    Run in the gunicorn master before any worker is forked: the workers inherit the life
    pipe's write end and the socket's path (SOCKET_ENV).
    """

    def __init__(self, database_url: str, restart_delay: float = 0.2):
        self.database_url = database_url
        self.restart_delay = restart_delay
        self.dir = tempfile.mkdtemp(prefix="ledger-writer-")  # 0700, and short enough for AF_UNIX
        self.path = os.path.join(self.dir, "writer.sock")
        self._life_r, self._life_w = os.pipe()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        self._thread: threading.Thread | None = None
        self.starts = 0
        self._started = 0.0
        self._last_delay = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self._spawn()
        os.environ[SOCKET_ENV] = self.path
        self._thread = threading.Thread(target=self._watch, name="writer-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Close the life pipe (the workers are gone by now) and wait for the writer to drain."""
        self._stopping.set()
        os.environ.pop(SOCKET_ENV, None)
        _close(self._life_w)
        proc, pidfd = self._proc, self._pidfd
        if proc is not None and pidfd >= 0:
            # a pidfd the watcher closed when it saw the exit is ready too
            if not readable([pidfd], timeout):
                log.error("the writer process did not stop within %g s; killed", timeout)
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _spawn(self) -> None:
        env = {**os.environ, "LEDGER_DATABASE_URL": self.database_url}
        env.pop(SOCKET_ENV, None)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.writer_process", self.path, str(self._life_r)],
            pass_fds=(self._life_r,),
            env=env,
        )
        self.starts += 1
        self._started = time.monotonic()
        try:
            # A pidfd tells of the exit whoever reaps it (gunicorn's master reaps every child).
            self._pidfd = os.pidfd_open(self._proc.pid)
        except ProcessLookupError:
            self._pidfd = -1

    def _watch(self) -> None:
        while not self._stopping.is_set():
            if self._pidfd >= 0:
                readable([self._pidfd])
                _close(self._pidfd)
                self._pidfd = -1
            if self._stopping.is_set():
                return
            # One that cannot start (a database URL it refuses, a broken install) is
            # retried at most every few seconds, not in a tight loop.
            delay = self.restart_delay
            if time.monotonic() - self._started < 2:
                delay = min(max(delay, self._last_delay * 2), 5.0)
            self._last_delay = delay
            log.error(
                "the writer process %s ended; callers in flight were answered unavailable; "
                "starting another in %.1f s",
                self.pid,
                delay,
            )
            time.sleep(delay)
            if not self._stopping.is_set():
                self._spawn()


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
