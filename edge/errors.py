"""The one exception tree of the box. Adapters translate library errors into
these with ``raise ... from exc``.

As gpiozero's errors do, the request errors below also inherit the built-in
type they mean (``NotFound`` is a ``LookupError``, ``Conflict`` a
``ValueError``): code that only knows the built-in still catches them, and code
of ours catches them by name."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the box raises on purpose."""


class ConfigError(EdgeError):
    """A config that cannot be used; ``messages`` holds one line per problem."""

    def __init__(self, source: str, messages: list[str]) -> None:
        super().__init__(f"{source}: {len(messages)} problem(s)\n" + "\n".join(messages))
        self.source = source
        self.messages = messages


class StorageError(EdgeError):
    """The outbox or the station store could not read or write durably."""


class DiskFull(StorageError):
    """A write failed for want of space (ENOSPC, EDQUOT, SQLite's SQLITE_FULL)."""


class UplinkError(EdgeError):
    """The MQTT link failed: not connected, refused, or timed out."""


class PublishRefused(UplinkError):
    """The broker answered a publish with a failure reason code (never retried as is)."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(f"broker refused the message: {reason} (0x{code:02x})")
        self.reason = reason
        self.code = code


class HardwareError(EdgeError):
    """A GPIO pin or camera could not be opened or read."""


class ProtocolError(EdgeError):
    """A message on the wire does not follow the protocol."""


class NotFound(EdgeError, LookupError):
    """What a request names is not on this box (an input, a camera without a picture)."""


class Conflict(EdgeError, ValueError):
    """Refused in the present state (a walk test already running, a config on probation,
    no config file to write): the request may succeed later."""
