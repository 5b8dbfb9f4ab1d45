"""The blocking client's JSON calls over the standard library's `http.client`.

A CLI command makes a handful of calls and exits; importing a general-purpose client cost
more than the calls (httpx and its dependencies took ~0.2 s of `scenarist status`'s
start-up). Each call opens its own connection and closes it after the response, so a
connection the server closed while idle can never swallow a request, and a request is
never sent twice: any failure raises `ServerUnreachableError`. https verifies the
server's certificate against the system's trust store. Server-sent event streams and
injected test transports still go through httpx (`ScenaristClient`).
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping

from scenarist.worker.errors import ResponseTooLargeError, ServerUnreachableError
from scenarist.worker.wire import Origin, Reply, header_lines


class BlockingTransport:
    def __init__(self, url: str, *, headers: Mapping[str, str], max_response_bytes: int) -> None:
        try:
            self.origin = Origin.parse(url)
        except ValueError as exc:  # a CLI user's --url: one line, not a traceback
            raise ServerUnreachableError(f"bad server URL: {exc}") from exc
        self._headers = dict(headers)
        self._max_bytes = max_response_bytes
        self._tls: ssl.SSLContext | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        origin = self.origin
        if origin.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return http.client.HTTPSConnection(
                origin.host, origin.port, timeout=timeout, context=self._tls
            )
        return http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> Reply:
        sent = {**self._headers, **(headers or {})}
        header_lines(sent)  # refuses a line break in a header, as the asyncio transport does
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        where = f"{method} {self.origin.scheme}://{self.origin.host_header}{path}"
        conn: http.client.HTTPConnection | None = None
        try:
            conn = self._connect(timeout)
            conn.request(method, self.origin.base_path + path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read(self._max_bytes + 1)
            if len(data) > self._max_bytes:
                raise ResponseTooLargeError(
                    f"{where}: response larger than {self._max_bytes} bytes"
                )
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            return Reply(response.status, reply_headers, data)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise ServerUnreachableError(f"{where}: {exc}") from exc
        finally:
            if conn is not None:
                conn.close()
