"""Podium's Redis Streams transport: envelope, keys, connections, streams, consumer groups, DLQ."""

from bus.connection import connect, is_embedded
from bus.consumer import Consumer, Delivery, Handler
from bus.envelope import Budget, BudgetExhausted, Envelope, Kind
from bus.errors import AccessDenied, BusClosed, BusError, ConfigError, DeadlineExpired, EnvelopeError
from bus.keys import Keys
from bus.streams import DeadLetter, StreamBus

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
