"""Podium's Redis Streams transport: envelope, keys, connections, streams, consumer groups, DLQ."""

from bus.connection import connect, is_embedded
from bus.envelope import Budget, BudgetExhausted, Envelope, Kind
from bus.errors import BusClosed, BusError, ConfigError, DeadlineExpired, EnvelopeError
from bus.keys import Keys

__all__ = [
    "Budget",
    "BudgetExhausted",
    "BusClosed",
    "BusError",
    "ConfigError",
    "DeadlineExpired",
    "Envelope",
    "EnvelopeError",
    "Keys",
    "Kind",
    "connect",
    "is_embedded",
]
