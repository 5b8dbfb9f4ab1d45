"""The callback address policy: which addresses it refuses, the allow-list, and the
check again at connect time (DNS rebinding), with a resolver stub in place of DNS."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpcore
import pytest
from pydantic import ValidationError

from scenarist.api.callback_policy import check_callback_url
from scenarist.api.callback_transport import PolicyConnectError, PolicyNetworkBackend
from scenarist.core.callback_addresses import (
    CallbackAddressPolicy,
    IPAddress,
    parse_allow_entry,
    refusal_reason,
)
from scenarist.core.errors import ParamError
from scenarist.settings import Settings

PUBLIC = ipaddress.ip_address("93.184.215.14")
DEFAULT = CallbackAddressPolicy()


class StubResolver:
    """Answers each lookup with the next list of addresses, as a rebinding DNS would."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = [[ipaddress.ip_address(a) for a in answer] for answer in answers]
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, **_: Any) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        return httpcore.AsyncMockStream([])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "0.0.0.0",
        "::",
        "169.254.169.254",
        "fe80::1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.10",
        "100.64.0.1",
        "fc00::1",
        "fd00:ec2::254",
        "224.0.0.251",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::",  # 6to4 around 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 around 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo around 127.0.0.1
        "192.0.2.1",
        "2001:db8::1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_the_allow_list_opens_networks_and_host_names() -> None:
    policy = CallbackAddressPolicy.from_entries(["10.0.0.0/8", "fd00::1", "Hooks.Internal."])
    assert policy.refusal(ipaddress.ip_address("10.2.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("fd00::1")) is None
    assert policy.refusal(ipaddress.ip_address("fd00::2")) is not None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is not None
    assert policy.allows_host("hooks.internal")
    assert not policy.allows_host("other.internal")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "", "http://x/", "1.2.3"])
def test_bad_allow_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="neither"):
        parse_allow_entry(entry)


def test_the_allow_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIST_CALLBACK_ALLOW", "10.0.0.0/8, hooks.internal")
    assert Settings().callback_allow == ("10.0.0.0/8", "hooks.internal")
    monkeypatch.setenv("SCENARIST_CALLBACK_ALLOW", '["::1"]')
    assert Settings().callback_allow == ("::1",)


def test_a_bad_allow_setting_fails_naming_the_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENARIST_CALLBACK_ALLOW", "10.0.0.0/8,10.0.0.0/99")
    with pytest.raises(ValidationError, match=r"callback_allow[\s\S]*10\.0\.0\.0/99"):
        Settings()


async def test_submit_refuses_a_name_that_resolves_inside() -> None:
    resolver = StubResolver(["93.184.215.14", "169.254.169.254"])
    with pytest.raises(ParamError, match=r"169\.254\.169\.254") as caught:
        await check_callback_url("http://hooks.example/x", Settings(), resolve=resolver)
    assert caught.value.field == "callback_url"


async def test_submit_accepts_a_name_that_does_not_resolve_yet() -> None:
    async def no_such_host(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    await check_callback_url("http://not-yet.example/x", Settings(), resolve=no_such_host)


async def test_connect_resolves_again_and_refuses_a_rebound_name() -> None:
    resolver = StubResolver(["93.184.215.14"], ["127.0.0.1"])
    await check_callback_url("http://rebind.example/x", Settings(), resolve=resolver)
    inner = RecordingBackend()
    backend = PolicyNetworkBackend(DEFAULT, resolve=resolver, inner=inner)
    with pytest.raises(PolicyConnectError, match=r"rebind\.example resolves to 127\.0\.0\.1"):
        await backend.connect_tcp("rebind.example", 80)
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert inner.connected == []


async def test_connect_goes_to_the_checked_address_not_the_name() -> None:
    backend = PolicyNetworkBackend(
        DEFAULT, resolve=StubResolver(["93.184.215.14"]), inner=(inner := RecordingBackend())
    )
    await backend.connect_tcp("hooks.example", 443)
    assert inner.connected == ["93.184.215.14"]


async def test_connect_refuses_a_literal_internal_address_without_resolving() -> None:
    resolver = StubResolver(["93.184.215.14"])
    backend = PolicyNetworkBackend(DEFAULT, resolve=resolver, inner=RecordingBackend())
    with pytest.raises(PolicyConnectError, match="loopback"):
        await backend.connect_tcp("127.0.0.1", 80)
    assert resolver.lookups == []


async def test_an_allowed_host_name_may_resolve_inside() -> None:
    policy = CallbackAddressPolicy.from_entries(["hooks.internal"])
    inner = RecordingBackend()
    backend = PolicyNetworkBackend(policy, resolve=StubResolver(["10.9.8.7"]), inner=inner)
    await backend.connect_tcp("hooks.internal", 80)
    assert inner.connected == ["10.9.8.7"]
