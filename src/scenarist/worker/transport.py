"""A small asyncio HTTP/1.1 keep-alive transport for the client's JSON calls.

A worker spends most of its client CPU in the HTTP stack: a general-purpose async client
costs more than a millisecond per request, a worker round is one request. This one does
only what the worker protocol needs: a request with a complete body, one response read
whole (Content-Length, chunked, or delimited by the server closing), a few pooled
keep-alive connections, one timeout per request. httptools (llhttp, as uvicorn uses)
parses the responses.

Requests are never sent twice: a pooled connection the server closed while idle is
noticed before it is used and replaced, but once a request's bytes may have reached the
server, any failure raises `ServerUnreachableError` and the caller decides whether to
retry (the worker loop does).
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Mapping
from typing import cast

import httptools

from scenarist.worker.errors import ResponseTooLargeError, ServerUnreachableError
from scenarist.worker.wire import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    Origin,
    Reply,
    header_lines,
)

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Connection(asyncio.Protocol):
    """One keep-alive connection running one exchange at a time; httptools calls the
    `on_*` methods as it parses the response."""

    def __init__(self, max_response_bytes: int) -> None:
        self._max_bytes = max_response_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reply: asyncio.Future[Reply] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._received = 0
        self._headers_done = False
        self.reusable = True  # False once the peer closed, misbehaved, or asked to close

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._reply is None or self._reply.done():
            self._fail("the server sent bytes nobody asked for")  # idle: not reusable
            return
        self._received += len(data)
        if self._received > self._max_bytes:
            self._fail(f"response larger than {self._max_bytes} bytes", too_large=True)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP response: {exc}")

    def eof_received(self) -> bool | None:
        self.reusable = False
        if self._reply is not None and not self._reply.done() and self._body_ends_at_close():
            self.on_message_complete()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(f"connection closed before the response ended ({exc or 'EOF'})")

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._reply is None or self._reply.done():
            self.reusable = False  # a second response to one request: out of step

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._reply is None or self._reply.done():
            return
        self.reusable = self.reusable and self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        self._reply.set_result(Reply(status, self._headers, b"".join(self._body)))
        self._headers, self._body = {}, []  # the reply owns those; stray bytes go elsewhere

    # the exchange

    async def exchange(self, request: bytes) -> Reply:
        """Send one request and wait for its whole response (the caller bounds the wait)."""
        if self._transport is None or self._transport.is_closing():
            raise ServerUnreachableError("connection closed")
        self._reply = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._received, self._headers_done = {}, [], 0, False
        self._parser = httptools.HttpResponseParser(self)
        self._transport.write(request)
        return await self._reply

    def still_open(self) -> bool:
        """Idle and unclosed as far as the loop knows, and with nothing waiting unread on
        the socket (a FIN or stray bytes the loop has not processed yet)."""
        if not self.reusable or self._transport is None or self._transport.is_closing():
            return False
        sock = self._transport.get_extra_info("socket")
        if sock is None:
            return True
        # poll, not select: select refuses descriptors above FD_SETSIZE (1024), which a
        # busy process embedding the client can reach. Any event (data, FIN, error) means
        # the connection is not idle and intact.
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    def _body_ends_at_close(self) -> bool:
        """A response with neither Content-Length nor chunked encoding ends at EOF."""
        framed = "content-length" in self._headers or "transfer-encoding" in self._headers
        return self._headers_done and not framed

    def _fail(self, reason: str, *, too_large: bool = False) -> None:
        self.reusable = False
        if self._reply is not None and not self._reply.done():
            error = ResponseTooLargeError if too_large else ServerUnreachableError
            self._reply.set_exception(error(reason))
        if self._transport is not None:
            self._transport.abort()


class HttpTransport:
    """Pooled keep-alive connections to one origin; `request` sends a whole body and
    returns the whole response. Safe for concurrent use from one event loop."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.origin = Origin.parse(url)
        self.max_response_bytes = max_response_bytes
        self._ssl = ssl_context
        if self.origin.scheme == "https" and ssl_context is None:
            self._ssl = ssl.create_default_context()
        self._fixed_headers = f"Host: {self.origin.host_header}\r\n" + header_lines(headers or {})
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False
        self.connections_opened = 0  # how many connections this transport has made

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float,
    ) -> Reply:
        """Raises `ServerUnreachableError` when the server cannot be reached, closes the
        connection early or does not answer within `timeout` seconds."""
        request = self._encode(method, path, body, headers, content_type)
        try:
            async with asyncio.timeout(timeout):
                return await self._send(request)
        except TimeoutError:
            where = self._where(method, path)
            raise ServerUnreachableError(f"{where}: no response within {timeout}s") from None
        except ServerUnreachableError as exc:
            raise type(exc)(f"{self._where(method, path)}: {exc}") from exc

    def _where(self, method: str, path: str) -> str:
        return f"{method} {self.origin.scheme}://{self.origin.host_header}{path}"

    async def aclose(self) -> None:
        """Close every connection; requests still waiting fail as unreachable."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def _send(self, request: bytes) -> Reply:
        async with self._slots:
            if self._closed:
                raise RuntimeError("the transport is closed")
            connection = self._take_idle() or await self._connect()
            try:
                reply = await connection.exchange(request)
            except BaseException:
                self._discard(connection)  # cancelled or failed mid-exchange: unusable
                raise
            if connection.reusable and not self._closed:
                self._idle.append(connection)
            else:
                self._discard(connection)
            return reply

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used is the likeliest open
            if connection.still_open():
                return connection
            self._discard(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        origin = self.origin
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self.max_response_bytes),
                origin.host,
                origin.port,
                ssl=self._ssl,
                server_hostname=origin.host if self._ssl else None,
            )
        except OSError as exc:
            raise ServerUnreachableError(f"cannot connect: {exc}") from exc
        self._open.add(connection)
        self.connections_opened += 1
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def _encode(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        content_type: str,
    ) -> bytes:
        if not path.startswith("/") or any(c in path for c in " \r\n\0"):
            raise ValueError(f"invalid request path {path!r}")
        head = f"{method} {self.origin.base_path}{path} HTTP/1.1\r\n{self._fixed_headers}"
        if headers:
            head += header_lines(headers)
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        elif method not in _BODYLESS_METHODS:
            head += "Content-Length: 0\r\n"
        return (head + "\r\n").encode("ascii") + (body or b"")
