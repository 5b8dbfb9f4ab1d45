"""Process configuration, read from `SCENARIST_*` environment variables (or passed in).

One `Settings` object is built at the composition root (`scenarist serve`, tests) and
handed to `create_app`; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import ipaddress
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scenarist.core.callback_addresses import parse_allow_entry

# Only a name that never goes to DNS counts, besides the literal loopback addresses: a
# name that merely resolves to (or looks like) 127.0.0.1 may resolve elsewhere tomorrow.
LOOPBACK_NAMES = frozenset({"localhost"})
MIN_TOKEN_LENGTH = 16
# Store URL query parameters that carry a credential (redis-py passes them to the server).
SECRET_QUERY_KEYS = frozenset({"password"})
REDACTED = "***"


class Role(StrEnum):
    CLIENT = "client"  # submit, read, cancel, retry
    WORKER = "worker"  # lease, heartbeat, complete, fail (its services only)
    ADMIN = "admin"  # everything


class TokenConfig(BaseModel):
    """One bearer token. A worker token without `services` may serve any service."""

    token: SecretStr = Field(min_length=MIN_TOKEN_LENGTH)
    role: Role
    services: frozenset[str] | None = None
    name: str | None = None  # shown in logs instead of the token

    @property
    def label(self) -> str:
        return self.name or self.role.value


def default_store_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("scenarist", appauthor=False))
    # Four slashes: `sqlite:///` + an absolute path (the SQLAlchemy convention).
    return f"sqlite:///{data_dir / 'scenarist.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCENARIST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=0, le=65535)
    store: str = Field(default_factory=default_store_url)
    scenarios: Path | None = None  # None: the packaged default catalog
    tokens: list[TokenConfig] = Field(default_factory=list)
    insecure: bool = False  # allow a non-loopback bind without tokens
    publish_lists: bool = False  # seed-style Redis list delivery (Redis store only)
    list_prefix: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    log_json: bool = False
    access_log: bool = True  # one log line per HTTP request (uvicorn's access log)
    retention_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    history_limit: int = Field(default=20, ge=1, le=1000)  # ended runs kept per task
    reaper_interval: float = Field(default=1.0, gt=0)
    callback_secret: SecretStr | None = None
    callback_interval: float = Field(default=1.0, gt=0)  # outbox poll period
    callback_timeout: float = Field(default=10.0, gt=0)  # total per delivery, DNS to body
    callback_max_attempts: int = Field(default=8, ge=1)
    callback_concurrency: int = Field(default=16, ge=1, le=1024)  # deliveries at once
    callback_per_host: int = Field(default=2, ge=1, le=1024)  # of those, to one host
    # Receivers exempt from the callback address policy (which refuses loopback, private
    # and link-local addresses): CIDRs, addresses or exact host names; comma-separated
    # or a JSON list.
    callback_allow: Annotated[tuple[str, ...], NoDecode] = ()
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    lease_wait_max_seconds: float = Field(default=60.0, ge=0, le=60.0)  # long-poll cap
    # Browser origins allowed to call the API (CORS); comma-separated in the environment.
    # Empty: no CORS headers at all, so pages on other origins cannot read the API.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Result previews in the dashboard: files under `artefacts_dir` are served read-only
    # at /ui/artefacts/; http(s) results are embedded only from `preview_origins` (they
    # are added to the pages' img-src and media-src, nothing else is).
    artefacts_dir: Path | None = None
    preview_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", "preview_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", "preview_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or origin.endswith("/"):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], e.g. "
                    "https://app.example.com (no path, no trailing slash, no wildcard)"
                )
            if parts.path or parts.query or parts.fragment:
                raise ValueError(f"{origin!r} is not an origin: it has a path or query")
        return [browser_origin(origin) for origin in origins]

    # Redis store: connections per Redis node, shared by every request, the notifier and
    # the background loops; a call that finds them all busy waits this long for one.
    redis_max_connections: int = Field(default=128, ge=1, le=10_000)
    redis_pool_timeout: float = Field(default=5.0, gt=0, le=300.0)

    @field_validator("tokens")
    @classmethod
    def _unique_tokens(cls, tokens: list[TokenConfig]) -> list[TokenConfig]:
        secrets = [t.token.get_secret_value() for t in tokens]
        if len(set(secrets)) != len(secrets):
            raise ValueError("each token may appear only once")
        return tokens

    @field_validator("callback_allow", mode="before")
    @classmethod
    def _callback_allow_entries(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            entries = [str(v).strip() for v in value if str(v).strip()]
            for entry in entries:
                parse_allow_entry(entry)  # a ValueError names the entry
            return tuple(entries)
        return value

    @property
    def binds_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def redacted_store(self) -> str:
        """The store URL as logs may show it: any password replaced."""
        return redact_url(self.store)

    def insecure_bind_problem(self) -> str | None:
        """Why this configuration must not start, or None when it may."""
        if self.tokens or self.insecure or self.binds_loopback:
            return None
        return (
            f"refusing to listen on {self.host} without authentication: configure "
            "SCENARIST_TOKENS (a JSON list of {token, role, services?}) or pass --insecure"
        )


def browser_origin(origin: str) -> str:
    """`origin` as a browser sends it in its Origin header (lower-case scheme and host, no
    default port), so `https://App.Example.com:443` matches the browser's
    `https://app.example.com` instead of never matching."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme.lower() == "https" else 80
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme.lower()}://{host}{port}"


def is_loopback_host(host: str) -> bool:
    """A literal loopback address (127.0.0.0/8, ::1) or `localhost`, nothing that resolves."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """`url` with the password of its user part and of its query replaced by ***.

    A user part without a password is replaced whole: redis-py sends a lone user part as
    the user name, and some setups put the secret there."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{hosts}" if colon else f"{REDACTED}@{hosts}"
    pairs = [pair.partition("=") for pair in parts.query.split("&")] if parts.query else []
    query = "&".join(
        f"{key}={REDACTED}" if key.lower() in SECRET_QUERY_KEYS else f"{key}{eq}{value}"
        for key, eq, value in pairs
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def describe_settings_error(exc: ValidationError, tokens_json: str | None = None) -> list[str]:
    """One line per invalid setting, naming the setting (and a token by its position and
    name) and what is wrong, never the value: a token list's values are secrets, and
    pydantic's own text quotes (part of) them."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        location = error["loc"]
        message = error["msg"]
        if location and location[0] == "tokens":
            lines.append(_describe_token_error(location[1:], error["type"], message, tokens_json))
        else:
            name = ".".join(str(part) for part in location)
            env = f"SCENARIST_{str(location[0]).upper()}" if location else "SCENARIST_*"
            lines.append(f"setting {name!r} ({env}): {message}")
    return lines


def _describe_token_error(
    location: tuple[int | str, ...], kind: str, message: str, tokens_json: str | None
) -> str:
    if not location or not isinstance(location[0], int):
        return f"SCENARIST_TOKENS: {message}"
    position = location[0]
    name = _token_name(tokens_json, position)
    entry = f"entry {position + 1}" + (f" (name {name!r})" if name else "")
    field = ".".join(str(part) for part in location[1:]) or "entry"
    if field == "token" and kind == "too_short":
        message = f"a token must be at least {MIN_TOKEN_LENGTH} characters long"
    return f"SCENARIST_TOKENS {entry}, field {field!r}: {message}"


def _token_name(tokens_json: str | None, position: int) -> str | None:
    """The `name` an operator gave the entry, read back from the raw JSON when possible."""
    try:
        entries = json.loads(tokens_json or "")
        name = entries[position].get("name")
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None
    return name if isinstance(name, str) else None
