"""The lane (bus.lane) on a real Redis: the auto-pipeline's and each blocking reader's own connection answers
every command as redis-py's client would, hands each reply over as soon as it is read, keeps redis-py's
failure rules (one resend on a fresh connection, the socket timeout), closes with its client, and a
blocked read that is cancelled leaves no stale connection behind."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.bus import lane as lanes
from podium.bus.autopipeline import AutoPipeline
from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.bus.helpers import until
from tests.support import RedisServer, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.real_redis]

HOLD = ("WAIT", 1, 1000)  # holds its connection for a second (no replica will acknowledge)


@pytest.fixture
async def pipe(redis: Any) -> AutoPipeline:
    if not lanes.usable(redis):
        pytest.skip("the lane is switched off (PODIUM_NO_LANE, PODIUM_NO_HIREDIS or PODIUM_PURE_PYTHON)")
    return AutoPipeline(redis)


@asynccontextmanager
async def lane_client(redis_url: str, **options: Any) -> AsyncIterator[Any]:
    """A client of its own (``connect(redis_url, **options)``) for the block; the test is skipped when lanes
    are switched off."""
    client = connect(redis_url, **options)
    try:
        if not lanes.usable(client):
            pytest.skip("the lane is switched off (PODIUM_NO_LANE, PODIUM_NO_HIREDIS or PODIUM_PURE_PYTHON)")
        yield client
    finally:
        await client.aclose()


async def _lane_client_id(pipe: AutoPipeline) -> int:
    return int(await pipe.execute_command("CLIENT", "ID"))


async def test_replies_are_parsed_as_redis_py_parses_them(redis: Any, pipe: AutoPipeline, keys: Keys) -> None:
    k = f"{keys.namespace}:lane"
    await redis.hset(f"{k}:h", mapping={"a": "1", "b": "2"})
    await redis.zadd(f"{k}:z", {"m": 1.5, "n": 2})
    await redis.xgroup_create(f"{k}:s", "g", id="$", mkstream=True)
    await redis.xadd(f"{k}:s", {"f": "v"})
    await redis.set(f"{k}:text", "not a number")
    calls = [
        ("set", lambda c: c.set(f"{k}:x", "1", px=60_000)),
        ("get", lambda c: c.get(f"{k}:missing")),
        ("hgetall", lambda c: c.hgetall(f"{k}:h")),
        ("hmget", lambda c: c.hmget(f"{k}:h", ["a", "missing"])),
        ("zrange", lambda c: c.zrange(f"{k}:z", 0, -1, withscores=True)),
        ("xrange", lambda c: c.xrange(f"{k}:s")),
        ("xinfo", lambda c: c.xinfo_groups(f"{k}:s")),
        ("exists", lambda c: c.exists(f"{k}:h", f"{k}:missing")),
    ]
    for name, call in calls:
        assert await call(pipe) == await call(redis), name
    with pytest.raises(ResponseError, match="not an integer"):
        await pipe.incr(f"{k}:text")
    with pytest.raises(NoScriptError):  # redis-py's own error class, which its scripts rely on
        await pipe.evalsha("0" * 40, 0)
    with pytest.raises(DataError):  # refused before anything is sent, for this caller only
        await pipe.set(f"{k}:y", None)  # type: ignore[arg-type]
    assert await pipe.incr(f"{k}:n") == 1


async def test_a_decoding_client_gets_text(redis_url: str, keys: Keys) -> None:
    async with lane_client(redis_url, decode_responses=True) as client:
        pipe = AutoPipeline(client)
        await pipe.hset(f"{keys.namespace}:h", mapping={"é": "ü"})
        assert await pipe.hgetall(f"{keys.namespace}:h") == {"é": "ü"}
        assert await pipe.dump(f"{keys.namespace}:h") == await client.dump(f"{keys.namespace}:h")  # raw bytes


async def test_each_reply_reaches_its_caller_as_soon_as_it_is_read(pipe: AutoPipeline, keys: Keys) -> None:
    n = f"{keys.namespace}:n"
    before = pipe.pipelines
    blocker = asyncio.ensure_future(pipe.execute_command("WAIT", 1, 100))  # an idle lane sends it at once
    first = asyncio.ensure_future(pipe.incr(n))  # these two wait for it, then go out together
    held = asyncio.ensure_future(pipe.execute_command(*HOLD))
    await until(lambda: first.done(), what="the INCR's reply")
    assert blocker.done() and first.result() == 1 and pipe.pipelines - before == 2
    assert not held.done() and pipe.in_flight  # its pipeline is still out, waiting on the hold
    assert await held == 0


async def test_a_batch_whose_connection_drops_is_sent_once_more(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    name = f"{keys.namespace}-lane"
    client = connect(redis_url, client_name=name)
    try:
        pipe = AutoPipeline(client)
        held = asyncio.ensure_future(pipe.execute_command(*HOLD))
        first = await _waiting(redis, name)
        await redis.client_kill_filter(_id=first)
        assert await held == 0  # answered on a fresh connection
        assert await _lane_client_id(pipe) != first

        # Dropped again after its resend: the caller hears of it, and the lane carries on afterwards.
        held = asyncio.ensure_future(pipe.execute_command(*HOLD))
        first = await _waiting(redis, name)
        await redis.client_kill_filter(_id=first)
        await redis.client_kill_filter(_id=await _waiting(redis, name, other_than=first))
        with pytest.raises(RedisConnectionError):
            await held
        assert await pipe.incr(f"{keys.namespace}:after") == 1
    finally:
        await client.aclose()


async def _waiting(redis: Any, name: str, other_than: int | None = None) -> int:
    """The id of the connection named ``name`` that is blocked in WAIT."""
    with anyio.fail_after(10):
        while True:
            for c in await redis.client_list(_type="normal"):
                if c.get("name") == name and c.get("cmd") == "wait" and int(c["id"]) != other_than:
                    return int(c["id"])
            await asyncio.sleep(0.01)


async def test_a_batch_unanswered_within_the_socket_timeout_fails_with_redis_pys_error(
    redis_url: str, keys: Keys
) -> None:
    async with lane_client(redis_url, socket_timeout=0.3) as client:
        pipe = AutoPipeline(client)
        with pytest.raises(RedisTimeoutError):
            await pipe.execute_command("WAIT", 1, 3000)
        # answered on a fresh connection: the old one's order of replies is lost
        assert await pipe.incr(f"{keys.namespace}:n") == 1


async def test_closing_the_client_closes_the_lanes_connection(redis: Any, redis_url: str, keys: Keys) -> None:
    client = connect(redis_url, client_name=f"{keys.namespace}-lane")
    if not lanes.usable(client):
        await client.aclose()
        pytest.skip("the lane is switched off")
    pipe = AutoPipeline(client)
    reads = lanes.BlockingReads(client)
    await pipe.ping()
    await reads.xread({f"{keys.namespace}:s": "0-0"}, block=10)

    async def ours() -> int:
        return sum(1 for c in await redis.client_list() if c.get("name") == f"{keys.namespace}-lane")

    assert await ours() == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await client.aclose()
    await until(lambda: _is_zero(ours()), what="the lane's connections closed")


async def _is_zero(count: Any) -> bool:
    return await count == 0


async def test_a_blocked_read_returns_as_soon_as_an_entry_comes(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    name = f"{keys.namespace}-reads"
    async with lane_client(redis_url, client_name=name) as client, lanes.reading(client) as reads:
        stream = f"{keys.namespace}:s"
        reading = asyncio.ensure_future(reads.xread({stream: "$"}, block=0))
        await until(lambda: _blocked(redis, name), what="the read blocked in Redis")
        entry = await redis.xadd(stream, {"f": "v"})
        with anyio.fail_after(5):
            assert await reading == [[stream.encode(), [(entry, {b"f": b"v"})]]]


async def test_a_cancelled_blocked_read_leaves_no_stale_connection(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    """Cancelled while blocked for ever, the read's connection is dropped (as redis-py drops its own): the
    next read is sent at once, not queued behind a command that never returns, and the pool gets its slot
    back."""
    name = f"{keys.namespace}-reads"
    async with lane_client(redis_url, client_name=name, max_connections=2) as client:
        stream = f"{keys.namespace}:s"
        async with lanes.reading(client) as reads:
            for _ in range(3):  # with a slot lost per cancelled read, the third would find the pool full
                with anyio.move_on_after(0.2):
                    await reads.xread({stream: "$"}, block=0)
            entry = await redis.xadd(stream, {"f": "v"})
            with anyio.fail_after(5):
                assert await reads.xread({stream: "0-0"}, block=0) == [
                    [stream.encode(), [(entry, {b"f": b"v"})]]
                ]
        await until(lambda: _gone(redis, name), what="the abandoned reads' connections closed")
        assert not client.connection_pool._in_use_connections  # every slot given back


async def _any_blocked(client: Any) -> bool:
    return any(c.get("cmd") == "xread" for c in await client.client_list())


async def _named(redis: Any, name: str) -> list[dict[str, Any]]:
    return [c for c in await redis.client_list(_type="normal") if c.get("name") == name]


async def _blocked(redis: Any, name: str) -> bool:
    return any(c.get("cmd") == "xread" for c in await _named(redis, name))


async def _gone(redis: Any, name: str) -> bool:
    return not await _named(redis, name)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_lanes_run_over_tls_and_a_unix_socket(tmp_path: Path, keys: Keys) -> None:
    """redis-py makes the connection (the TLS handshake, the socket), the lane drives it: both a pipeline and
    a blocking read work over ``rediss://`` and ``unix://``."""
    cert, key = _self_signed(tmp_path)
    tls_port, sock = free_port(), tmp_path / "redis.sock"
    args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--unixsocket", str(sock)]  # fmt: skip
    server = RedisServer(extra_args=args)
    try:
        server.start()
    except TimeoutError:
        if server.proc is None or server.proc.poll() is None:
            raise
        server.close()
        pytest.skip("this redis-server exits on --tls-port: built without TLS")
    try:
        stream = f"{keys.namespace}:s"
        for url in (f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}", f"unix://{sock}"):
            async with lane_client(url) as client, lanes.reading(client) as reads:
                pipe = AutoPipeline(client)
                assert await asyncio.gather(*(pipe.incr(f"{keys.namespace}:{url}") for _ in range(3))) == [
                    1,
                    2,
                    3,
                ]
                assert pipe._lane is not None
                last = (
                    (await pipe.xinfo_stream(stream))["last-generated-id"]
                    if await pipe.exists(stream)
                    else "0-0"
                )
                blocked = asyncio.ensure_future(reads.xread({stream: last}, block=0))
                # the read's own connection (its TLS handshake first) must be blocked before the XADD
                await until(lambda pipe=pipe: _any_blocked(pipe), what="the read blocked in Redis")
                entry = await pipe.xadd(stream, {"via": url})
                with anyio.fail_after(5):
                    assert (await blocked)[0][1] == [(entry, {b"via": url.encode()})]
    finally:
        server.close()
