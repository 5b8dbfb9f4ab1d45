"""The callback address policy applied: at submit time (early feedback, 422) and at
connect time (the guarantee, see callback_transport.py).

A host name is resolved and EVERY address it resolves to is checked: a name with one
public and one internal address is refused, since which one a connection would use is
not ours to choose. The submit-time check cannot be the only one: DNS may answer a public
address now and 127.0.0.1 when the callback is delivered (DNS rebinding), so delivery
resolves again and connects only to an address it has just checked.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from scenarist.core.callback_addresses import CallbackAddressPolicy, IPAddress
from scenarist.core.errors import ParamError
from scenarist.settings import Settings

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
# Submit waits this long for DNS at most; a slower answer leaves the check to delivery.
SUBMIT_RESOLVE_SECONDS = 2.0


class CallbackRefusedError(Exception):
    """The callback's host is, or resolves to, an address the policy refuses."""


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (TCP), in the resolver's order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(addresses))


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def checked_addresses(
    host: str, port: int, policy: CallbackAddressPolicy, resolve: Resolver
) -> list[IPAddress]:
    """The addresses a callback to `host` may connect to; raise CallbackRefusedError when
    the host or any address it resolves to is refused. OSError (resolution failed)
    propagates."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = await resolve(host, port)
        if policy.allows_host(host):
            return addresses
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            shown = host if literal is not None else f"{host} resolves to {address}, which"
            raise CallbackRefusedError(
                f"{shown} is {reason}; callbacks to internal addresses are refused "
                "unless SCENARIST_CALLBACK_ALLOW lists them"
            )
    return addresses


@functools.lru_cache(maxsize=8)
def policy_for(allow: tuple[str, ...]) -> CallbackAddressPolicy:
    """The policy of an allow-list, built once per distinct list (hashable: a tuple)."""
    return CallbackAddressPolicy.from_entries(allow)


async def check_callback_url(
    url: str, settings: Settings, *, resolve: Resolver = resolve_host
) -> None:
    """Refuse (ParamError on `callback_url`, a 422) a URL whose host the policy refuses.
    A host that does not resolve now passes: DNS may not know it yet, and delivery
    checks again (and retries) anyway."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    policy = policy_for(settings.callback_allow)
    try:
        async with asyncio.timeout(SUBMIT_RESOLVE_SECONDS):
            await checked_addresses(host, port, policy, resolve)
    except CallbackRefusedError as exc:
        raise ParamError(f"callback_url refused: {exc}", field="callback_url") from None
    except (OSError, TimeoutError):
        return
