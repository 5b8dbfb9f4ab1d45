"""Process configuration, read from `SCENARIST_*` environment variables (or passed in).

One `Settings` object is built at the composition root (`scenarist serve`, tests) and
handed to `create_app`; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class Role(StrEnum):
    CLIENT = "client"  # submit, read, cancel, retry
    WORKER = "worker"  # lease, heartbeat, complete, fail (its services only)
    ADMIN = "admin"  # everything


class TokenConfig(BaseModel):
    """One bearer token. A worker token without `services` may serve any service."""

    token: SecretStr = Field(min_length=16)
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
    reaper_interval: float = Field(default=1.0, gt=0)
    callback_secret: SecretStr | None = None
    callback_interval: float = Field(default=1.0, gt=0)  # outbox poll period
    callback_timeout: float = Field(default=10.0, gt=0)
    callback_max_attempts: int = Field(default=8, ge=1)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    lease_wait_max_seconds: float = Field(default=60.0, ge=0, le=60.0)  # long-poll cap
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

    @property
    def binds_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    def insecure_bind_problem(self) -> str | None:
        """Why this configuration must not start, or None when it may."""
        if self.tokens or self.insecure or self.binds_loopback:
            return None
        return (
            f"refusing to listen on {self.host} without authentication: configure "
            "SCENARIST_TOKENS (a JSON list of {token, role, services?}) or pass --insecure"
        )
