"""Connection factory: a real Redis (or Redis Cluster) from ``REDIS_URL``, or an embedded in-process bus.

Nothing deeper in Podium creates its own Redis client: processes call :func:`connect` once and pass
the client down. The embedded bus (fakeredis, with lupa and numpy behind it: about 30 MB) is imported
only by a process that uses it.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from podium.bus.errors import ConfigError
from podium.bus.speedups import hiredis_enabled, hiredis_packing, redis_kwargs

if TYPE_CHECKING:
    import fakeredis

_SCHEMES = {"redis", "rediss", "unix"}
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# One fake server per process: every embedded client sees the same data, like one Redis would.
_EMBEDDED_SERVER: fakeredis.FakeServer | None = None

AnyRedis = Redis | RedisCluster


def embedded_server() -> fakeredis.FakeServer:
    import fakeredis

    global _EMBEDDED_SERVER
    if _EMBEDDED_SERVER is None:
        _EMBEDDED_SERVER = fakeredis.FakeServer()
    return _EMBEDDED_SERVER


def connect(url: str | None = None, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """Return an async Redis client.

    ``url`` defaults to ``REDIS_URL``; with neither, an embedded in-process server (fakeredis) is used.
    Redis Cluster is chosen by ``cluster=True``, a ``redis+cluster://`` / ``rediss+cluster://`` scheme,
    ``?cluster=true`` in the URL, or ``PODIUM_REDIS_CLUSTER=1``.
    Raises ``ConfigError`` naming ``REDIS_URL`` when the URL cannot be used.
    """
    url = url if url is not None else os.environ.get("REDIS_URL") or None
    kwargs.setdefault("health_check_interval", 0)
    if not url:
        import fakeredis

        kwargs.pop("health_check_interval", None)
        return fakeredis.FakeAsyncRedis(server=embedded_server(), **kwargs)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    if cluster is None:
        cluster = (
            scheme in _CLUSTER_SCHEMES
            or query.get("cluster", ["false"])[0].lower() in ("1", "true", "yes")
            or os.environ.get("PODIUM_REDIS_CLUSTER", "").lower() in ("1", "true", "yes")
        )
    if scheme in _CLUSTER_SCHEMES:
        scheme = _CLUSTER_SCHEMES[scheme]
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"REDIS_URL: unsupported scheme {parts.scheme!r} in {redact(url)!r}; "
            "use redis://host:port/db, rediss:// for TLS, or redis+cluster:// for Redis Cluster"
        )
    if scheme != "unix" and not parts.hostname:
        raise ConfigError(f"REDIS_URL: no host in {redact(url)!r}; expected e.g. redis://127.0.0.1:6379/0")
    if "cluster" in query:
        kept = "&".join(p for p in parts.query.split("&") if not p.startswith("cluster="))
        parts = parts._replace(query=kept)
    clean = urlunsplit(parts._replace(scheme=scheme))
    try:
        if cluster:
            kwargs.pop("health_check_interval", None)
            return RedisCluster.from_url(clean, **kwargs)
        # After a Redis restart every pooled connection is dead, and a client made from a URL does not
        # retry: the first command on each one failed ("Connection closed by server") although Redis was
        # back. Such a command is sent once more at once, on a fresh connection.
        kwargs.setdefault("retry", Retry(NoBackoff(), 1))
        kwargs.setdefault("retry_on_error", [RedisConnectionError])
        for name, value in redis_kwargs().items():  # redis-py's own parser when hiredis is switched off
            kwargs.setdefault(name, value)
        client = Redis.from_url(clean, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from exc
    if hiredis_enabled():  # commands packed by hiredis too, as redis-py's synchronous client does
        pool = client.connection_pool
        pool.connection_class = hiredis_packing(pool.connection_class)
    return client


def is_embedded(client: Any) -> bool:
    """True for the in-process bus, where blocking reads return at once and must be waited for otherwise."""
    fakeredis = sys.modules.get("fakeredis")  # never imported: no client can be an embedded one
    return fakeredis is not None and isinstance(client, fakeredis.FakeAsyncRedis)


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: what Podium binds unless told otherwise."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
