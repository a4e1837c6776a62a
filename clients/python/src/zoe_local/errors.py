"""Exceptions of the client. The hierarchy (``except ZoeError`` catches them all)::

    ZoeError
    ├── InvalidEvent (also ValueError)   a bad argument of emit() / post_state(); .field is its JSON pointer
    ├── ClientClosed (also RuntimeError) a call after close()
    ├── SpoolError                       the spool cannot be opened or did not commit a durable=True event in time
    ├── ServiceError                     the service answered an error: .status, .code, .message, .details
    ├── ServiceUnreachable (also ConnectionError)  no answer: refused, reset, timed out, malformed
    └── StreamReset                      follow(): the position is beyond the newest stored seq

A bad option of ``Client(...)`` / ``Settings(...)`` raises a plain ValueError
naming it (an unknown one TypeError), before anything starts.

Misuse (a bad field, a closed client) raises at once in the caller's thread.
Transport problems never raise from ``emit()``: the sender retries them, and a
verdict that will never change sends the event to the dead-letter table.
The synchronous calls (``events()``, ``state()``, ``post_state(wait=True)``,
``follow()``) raise :class:`ServiceError` or :class:`ServiceUnreachable`.
"""

from __future__ import annotations

from typing import Any, Optional


class ZoeError(Exception):
    """Base class of every exception this package raises."""


class InvalidEvent(ZoeError, ValueError):
    """An argument of ``emit()`` (or ``post_state()``) the service would refuse.

    ``field`` names it as a JSON pointer into the event, e.g. ``/severity`` or
    ``/meta/order/qty``.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ClientClosed(ZoeError, RuntimeError):
    """``emit()`` or ``post_state()`` after ``close()``."""


class SpoolError(ZoeError):
    """The spool file cannot be opened, is used by another process, or did not
    commit a ``durable=True`` event in time (the event stays queued)."""


class ServiceError(ZoeError):
    """The service answered an error: ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


class ServiceUnreachable(ZoeError, ConnectionError):
    """No answer: connection refused or reset, timeout, or a malformed answer."""


class StreamReset(ZoeError):
    """``follow()`` was told its position is beyond the newest stored seq.

    That happens when the service's database was replaced (restored from a
    backup, or a new file): seqs the follower saw no longer exist. Re-read the
    state (``state()``) and follow again from ``newest_seq``.
    """

    def __init__(self, position: int, newest_seq: int) -> None:
        super().__init__(
            f"Stream position {position} is beyond the newest stored seq {newest_seq}: "
            "the service's database was replaced; resync from state() and follow from newest_seq"
        )
        self.position = position
        self.newest_seq = newest_seq
