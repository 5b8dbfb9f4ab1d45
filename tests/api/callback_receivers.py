"""Loopback HTTP receivers for callback tests, each on its own thread: a well-behaved one
(optionally failing its first deliveries), one that drips its answer a byte at a time,
and one whose answer is a body far too large to read."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

WAIT_SECONDS = 15.0  # a cap for waiting on an event that should come much sooner


@dataclass
class Receiver:
    """Answers 500 to its first `failures` deliveries, then 204."""

    failures: int = 0
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.received) < receiver.failures else 204
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


class RawReceiver:
    """A one-connection-at-a-time socket server; subclasses write the answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.requests = 0
        self.requested = threading.Event()
        self.released = threading.Event()
        self.client_gone = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def start(self) -> Self:
        self.thread.start()
        return self

    def serve(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                read_request(conn)
                self.requests += 1
                self.requested.set()
                try:
                    self.answer(conn)
                except OSError:
                    self.client_gone.set()

    def answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.released.set()
        with contextlib.suppress(OSError):  # wakes the accept() (close alone does not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(WAIT_SECONDS)


class DripReceiver(RawReceiver):
    """Sends its status line one byte every `period` seconds, until released: a per-read
    timeout never fires on it, only a deadline for the whole delivery does."""

    def __init__(self, period: float = 0.05) -> None:
        super().__init__()
        self.period = period

    def answer(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 204 No Content\r\n"
        header = b"X-Drip: 1\r\n"  # one more header line, forever: the head never ends
        sent = 0
        while not self.released.wait(self.period):
            stream = head if sent < len(head) else header
            at = sent if sent < len(head) else (sent - len(head)) % len(header)
            conn.sendall(stream[at : at + 1])
            sent += 1
            if is_closed(conn):
                raise ConnectionResetError("the client hung up")


class HugeBodyReceiver(RawReceiver):
    """Answers 200 with a 400 MiB body, written until the client stops reading."""

    BODY_BYTES = 400 * 1024 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.body_bytes_sent = 0
        self.done = threading.Event()

    def answer(self, conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {self.BODY_BYTES}\r\n\r\n".encode()
        )
        chunk = b"\0" * 65536
        try:
            while self.body_bytes_sent < self.BODY_BYTES:
                conn.sendall(chunk)
                self.body_bytes_sent += len(chunk)
        finally:
            self.done.set()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return body


def is_closed(conn: socket.socket) -> bool:
    """True once the peer closed its end (a read would return b"" at once)."""
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    finally:
        conn.setblocking(True)
