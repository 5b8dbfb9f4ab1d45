"""The HTTP connection pool callbacks go out through, with the address policy enforced
where the socket is opened.

The pool's network backend resolves the host itself, checks every address, and connects
to one of the addresses it checked, never to the name (which the platform would resolve
again, perhaps differently). TLS still verifies the certificate against the host name:
the connection pool passes the name as the TLS server name, not the address. No proxy is
used (a proxy would resolve the name on its own side) and redirects are not followed.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpcore

from scenarist.api.callback_policy import (
    CallbackRefusedError,
    Resolver,
    checked_addresses,
    resolve_host,
)
from scenarist.core.callback_addresses import CallbackAddressPolicy

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class PolicyConnectError(httpcore.ConnectError):
    """The policy refused every address of the callback's host: retrying cannot help."""


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows (see the module docstring)."""

    def __init__(
        self,
        policy: CallbackAddressPolicy,
        *,
        resolve: Resolver = resolve_host,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(host, port, self.policy, self.resolve)
        except CallbackRefusedError as exc:
            raise PolicyConnectError(str(exc)) from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        last_error: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise PolicyConnectError("callbacks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def callback_pool(
    policy: CallbackAddressPolicy,
    *,
    max_connections: int,
    resolve: Resolver = resolve_host,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(
        max_connections=max_connections,
        network_backend=PolicyNetworkBackend(policy, resolve=resolve, inner=inner),
    )
