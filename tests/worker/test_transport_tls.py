"""The keep-alive transport over https: a certificate the caller trusts is used and its
connection reused; an untrusted one is refused by default (no silent downgrade).

The server is a minimal asyncio TLS server answering every request with a small JSON
body; the certificate is made for the test by the `openssl` command line tool.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scenarist.worker.errors import ServerUnreachableError
from scenarist.worker.transport import HttpTransport

ANSWER = b'{"status":"healthy"}'
RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(ANSWER)}\r\n\r\n".encode()
)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command line tool is needed to make a test certificate"
    key, cert = directory / "key.pem", directory / "cert.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return key, cert


async def answer_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(RESPONSE_HEAD + ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    key, cert = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(answer_requests, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://localhost:{port}", cert
    finally:
        server.close()
        await server.wait_closed()


async def test_a_trusted_certificate_is_used_and_the_connection_kept(
    tls_server: tuple[str, Path],
) -> None:
    url, cert = tls_server
    trusted = ssl.create_default_context(cafile=str(cert))
    transport = HttpTransport(url, ssl_context=trusted)
    try:
        for _ in range(3):
            reply = await transport.request("GET", "/health", timeout=10)
            assert (reply.status, reply.body) == (200, ANSWER)
        assert transport.connections_opened == 1
    finally:
        await transport.aclose()


async def test_an_untrusted_certificate_is_refused_by_default(
    tls_server: tuple[str, Path],
) -> None:
    url, _ = tls_server
    transport = HttpTransport(url)
    try:
        with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            await transport.request("GET", "/health", timeout=10)
    finally:
        await transport.aclose()
