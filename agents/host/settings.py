"""One agent process's settings (``RuntimeConfig``), from the environment with flags over it, checked when made."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from podium.bus.backpressure import DEFAULT_CAPACITY, DEFAULT_RETRY_AFTER_S
from podium.bus.errors import ConfigError
from podium.bus.eviction import allowed_from_env
from podium.bus.keys import validate_name
from podium.bus.retention import RetentionPolicy

STARTUP_TIMEOUT_ENV = "PODIUM_STARTUP_TIMEOUT"
A2A_TOKEN_ENV = "PODIUM_A2A_TOKEN"
MCP_TOKEN_ENV = "PODIUM_MCP_TOKEN"
REGISTRY_TOKEN_ENV = "PODIUM_REGISTRY_TOKEN"
CLIENTS_FILE_ENV = "PODIUM_CLIENTS_FILE"
OIDC_ISSUER_ENV = "PODIUM_OIDC_ISSUER"
OIDC_AUDIENCE_ENV = "PODIUM_OIDC_AUDIENCE"
GRACE_ENV = "PODIUM_SHUTDOWN_GRACE_S"
DEFAULT_STARTUP_TIMEOUT_S = 60.0


@dataclass
class RuntimeConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    public_url: str | None = None  # what the card advertises, when it differs (containers)
    redis_url: str | None = None
    namespace: str = "podium"
    token: str | None = None  # PODIUM_A2A_TOKEN: the client named ``default``
    clients_file: str | None = None  # PODIUM_CLIENTS_FILE: per-client token hashes (``podium clients``)
    oidc_issuer: str | None = None  # PODIUM_OIDC_ISSUER / _AUDIENCE: JWTs verified against its JWKS
    oidc_audience: str | None = None
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    concurrency: int = 16
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    heartbeat_ttl: float = 15.0
    grace_s: float = 10.0  # after SIGTERM, how long in-flight work may take to finish (Kubernetes: keep it
    # well under terminationGracePeriodSeconds)
    register: bool = True
    # Seconds to become ready, waiting for Redis included; 0: no limit.
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S
    capacity: int = DEFAULT_CAPACITY  # unacknowledged inbox entries before new work is refused; 0: no cap
    retry_after_s: float = DEFAULT_RETRY_AFTER_S  # the hint an overloaded agent gives its callers
    allow_eviction: bool = False  # run even on a Redis whose maxmemory-policy evicts keys
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def __post_init__(self) -> None:
        """Raises ``ValueError`` for a bad agent name, ``ConfigError`` naming any other bad setting."""
        validate_name("agent name", self.name)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within 0-65535 (0: a free port), got {self.port}")
        for setting in ("concurrency", "claim_idle_ms", "max_deliveries"):
            if getattr(self, setting) < 1:
                raise ConfigError(
                    f"{setting.replace('_', '-')} must be at least 1, got {getattr(self, setting)}"
                )
        if not self.heartbeat_ttl > 0:
            raise ConfigError(f"heartbeat-ttl must be more than 0 seconds, got {self.heartbeat_ttl}")
        if not self.startup_timeout >= 0:  # also refuses NaN
            raise ConfigError(
                f"startup-timeout must be 0 (no limit) or more seconds, got {self.startup_timeout}"
            )
        if not 0 <= self.grace_s <= 3600:  # also refuses NaN
            raise ConfigError(f"grace must be within 0-3600 seconds, got {self.grace_s}")
        if bool(self.oidc_issuer) != bool(self.oidc_audience):
            raise ConfigError(
                f"set both {OIDC_ISSUER_ENV} and {OIDC_AUDIENCE_ENV} (JWTs are checked for both), or neither"
            )
        if self.capacity < 0 or not self.retry_after_s >= 0:
            raise ConfigError(
                f"capacity and retry-after must be >= 0, got {self.capacity}, {self.retry_after_s}"
            )

    @classmethod
    def from_env(cls, name: str, **overrides: Any) -> RuntimeConfig:
        """Settings from the environment, ``overrides`` (not None) over them. Raises ``ConfigError`` naming
        a bad variable, ``ValueError`` for a bad agent name."""
        env = os.environ
        values: dict[str, Any] = {
            "redis_url": env.get("REDIS_URL") or None,
            "namespace": env.get("PODIUM_NAMESPACE") or "podium",
            "token": env.get(A2A_TOKEN_ENV) or None,
            "clients_file": env.get(CLIENTS_FILE_ENV) or None,
            "oidc_issuer": env.get(OIDC_ISSUER_ENV) or None,
            "oidc_audience": env.get(OIDC_AUDIENCE_ENV) or None,
            "public_url": env.get("PODIUM_PUBLIC_URL") or None,
            "startup_timeout": startup_timeout_from_env(),
            "capacity": _env_number("PODIUM_INBOX_CAPACITY", int),
            "retry_after_s": _env_number("PODIUM_RETRY_AFTER_S", float),
            "grace_s": _env_number(GRACE_ENV, float),
            "allow_eviction": allowed_from_env() or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(name=name, **{k: v for k, v in values.items() if v is not None})

    @property
    def authenticated(self) -> bool:
        """True when the agent's A2A HTTP endpoints require a caller's credentials."""
        return bool(self.token or self.clients_file or self.oidc_issuer)


def registry_token_from_env() -> str | None:
    """``PODIUM_REGISTRY_TOKEN``: what registry writes over HTTP need (None: loopback clients only)."""
    return os.environ.get(REGISTRY_TOKEN_ENV) or None


def mcp_token_from_env() -> str | None:
    """``PODIUM_MCP_TOKEN``: the bearer token of MCP servers over HTTP, and what agents send them."""
    return os.environ.get(MCP_TOKEN_ENV) or None


def exposure_problem(host: str, unauthenticated: dict[str, str]) -> str | None:
    """The one line that refuses to bind ``host`` beyond loopback while services have no authentication
    configured (``unauthenticated``: service -> what configures it); None when nothing is to be refused."""
    from podium.bus.connection import is_loopback

    if is_loopback(host) or not unauthenticated:
        return None
    fixes = "; ".join(f"{what} for {service}" for service, what in unauthenticated.items())
    return (
        f"refusing to listen on {host} with no authentication: set {fixes} "
        f"(`podium acl --with-tokens` makes tokens), bind 127.0.0.1, or pass --insecure"
    )


A2A_AUTH_FIX = f"{A2A_TOKEN_ENV} or {CLIENTS_FILE_ENV} (`podium clients add`)"


def startup_timeout_from_env() -> float:
    """``PODIUM_STARTUP_TIMEOUT`` in seconds (default 60; 0: no limit). Raises ``ConfigError`` naming it."""
    raw = os.environ.get(STARTUP_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_STARTUP_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{STARTUP_TIMEOUT_ENV}={raw!r}: expected seconds, 0 or more (0: no limit)")
    return value


def _env_number(name: str, kind: type[int] | type[float]) -> Any:
    """A number from the environment, None when unset. Raises ``ConfigError`` naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None


class StartupError(Exception):
    """Agent ``agent`` could not become ready: Redis unreachable until the start-up deadline, lost while
    starting, or another start-up step that did not finish in time. The message says what to do."""

    def __init__(self, agent: str, message: str) -> None:
        super().__init__(message)
        self.agent = agent
