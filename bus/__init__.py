"""Podium's Redis Streams transport: envelope, keys, connections, streams, consumer groups, DLQ."""

from podium.bus.connection import connect, is_embedded
from podium.bus.consumer import Consumer, Delivery, Handler
from podium.bus.envelope import Budget, BudgetExhausted, Envelope, Kind
from podium.bus.errors import AccessDenied, BusClosed, BusError, ConfigError, DeadlineExpired, EnvelopeError
from podium.bus.keys import Keys
from podium.bus.streams import DeadLetter, StreamBus

__all__ = [
    "AccessDenied",
    "Budget",
    "BudgetExhausted",
    "BusClosed",
    "BusError",
    "ConfigError",
    "Consumer",
    "DeadLetter",
    "DeadlineExpired",
    "Delivery",
    "Envelope",
    "EnvelopeError",
    "Handler",
    "Keys",
    "Kind",
    "StreamBus",
    "connect",
    "is_embedded",
]
