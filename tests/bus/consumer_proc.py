"""A consumer in its own OS process, for the kill tests: ``python -m tests.bus.consumer_proc URL NS AGENT NAME``.

Its handler records the entry it started in the key ``{NS}:started`` and then blocks forever, so a test
can SIGKILL the process mid-handler.
"""

from __future__ import annotations

import sys

import anyio

from podium.bus.connection import connect
from podium.bus.consumer import Consumer, Delivery
from podium.bus.envelope import Envelope
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus


async def main(url: str, namespace: str, agent: str, name: str) -> None:
    client = connect(url)
    bus = StreamBus(client, Keys(namespace))

    async def handler(env: Envelope, delivery: Delivery) -> None:
        await client.set(f"{namespace}:started", delivery.entry_id)
        await anyio.sleep_forever()

    try:
        await Consumer(bus, agent, handler, consumer=name, claim_idle_ms=300, concurrency=16).run()
    finally:
        await client.aclose()


if __name__ == "__main__":
    url, namespace, agent, name = sys.argv[1:5]
    anyio.run(main, url, namespace, agent, name)
