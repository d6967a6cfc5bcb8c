"""Errors raised by the bus."""

from __future__ import annotations


class BusError(Exception):
    """Base class for every bus error."""

    default = "bus error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)


class ConfigError(BusError):
    """A bus setting (URL, name, limit) is invalid."""

    default = "invalid bus configuration"


class AccessDenied(ConfigError):
    """Redis refused a command or key to this process's user (ACL ``NOPERM``): the user in ``REDIS_URL``
    is not the one for this agent, or the ACL file lacks a rule. Restarting does not help."""

    default = "Redis refused access (NOPERM)"


class EnvelopeError(BusError):
    """A stream entry is not a valid Envelope."""

    default = "malformed envelope"


class DeadlineExpired(BusError):
    """The request's deadline passed before it could be handled."""

    default = "deadline expired"


class BusClosed(BusError):
    """The bus or consumer was shut down."""

    default = "bus is closed"
