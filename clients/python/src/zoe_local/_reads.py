"""The reading side of :class:`~zoe_local.Client`: events, state and the live
stream, over their own connections (one per calling thread), so a read never
waits behind the sender's batch in flight."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlencode

from ._transport import BaseUrl, Transport, call_json
from .models import MODES, ResetEvent, State, StoredEvent
from .stream import AsyncEventStream, EventStream


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class Reads:
    """Mixed into Client: needs ``_base``, ``_token``, ``_timeout``, ``_log``, ``_readers`` and ``mode``."""

    _base: BaseUrl
    _token: Optional[str]
    _timeout: float
    _log: logging.Logger
    _readers: threading.local
    mode: Optional[str]

    def _reader(self) -> Transport:
        t = getattr(self._readers, "transport", None)
        if t is None:
            t = Transport(self._base, self._token, self._timeout)
            self._readers.transport = t
        return t  # type: ignore[no-any-return]

    def _mode(self, mode: Optional[str]) -> str:
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r} (pass mode= here or to Client())")
        return mode

    def events(
        self,
        since_seq: Optional[int] = None,
        limit: int = 50,
        *,
        mode: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> List[StoredEvent]:
        """Stored events with seq > since_seq, ascending (without since_seq: the newest ``limit``)."""
        query: Dict[str, Any] = {"mode": self._mode(mode), "limit": limit}
        if since_seq is not None:
            query["since_seq"] = since_seq
        return call_json(self._reader(), "GET", f"/local/events?{urlencode(query)}", None, timeout)  # type: ignore[no-any-return]

    def state(self, *, mode: Optional[str] = None, timeout: Optional[float] = None) -> State:
        """The newest state snapshot with ``last_seq`` and the service's health."""
        return call_json(self._reader(), "GET", f"/local/state?{urlencode({'mode': self._mode(mode)})}", None, timeout)  # type: ignore[no-any-return]

    async def aevents(
        self,
        since_seq: Optional[int] = None,
        limit: int = 50,
        *,
        mode: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> List[StoredEvent]:
        """``events()`` for asyncio: the request runs in a worker thread (``asyncio.to_thread``)."""
        return await asyncio.to_thread(self.events, since_seq, limit, mode=mode, timeout=timeout)

    async def astate(self, *, mode: Optional[str] = None, timeout: Optional[float] = None) -> State:
        """``state()`` for asyncio: the request runs in a worker thread."""
        return await asyncio.to_thread(self.state, mode=mode, timeout=timeout)

    def afollow(
        self,
        since_seq: Optional[int] = None,
        *,
        mode: Optional[str] = None,
        on_reset: Optional[Callable[[ResetEvent], Optional[int]]] = None,
        idle_timeout: float = 10.0,
        reconnect_delay: Optional[float] = None,
        max_reconnect_delay: float = 30.0,
    ) -> AsyncEventStream:
        """``follow()`` for ``async for``: the same events, resumes and resets, read
        with asyncio streams, so the loop runs while it waits. Cancel the task
        that iterates, or ``await stream.aclose()``, to end it."""
        return self._stream(
            AsyncEventStream, since_seq, mode, on_reset, idle_timeout, reconnect_delay, max_reconnect_delay
        )

    def follow(
        self,
        since_seq: Optional[int] = None,
        *,
        mode: Optional[str] = None,
        on_reset: Optional[Callable[[ResetEvent], Optional[int]]] = None,
        idle_timeout: float = 10.0,
        reconnect_delay: Optional[float] = None,
        max_reconnect_delay: float = 30.0,
    ) -> EventStream:
        """Stored events with seq > since_seq as they are committed, forever
        (without since_seq: from the newest seq at the first connection).
        Reconnects by itself; see stream.py. ``on_reset`` is called when the
        position is beyond the newest seq; it returns the seq to resume from
        (None: the newest). Without it :class:`StreamReset` is raised."""
        return self._stream(EventStream, since_seq, mode, on_reset, idle_timeout, reconnect_delay, max_reconnect_delay)

    def _stream(
        self,
        kind: Any,
        since_seq: Optional[int],
        mode: Optional[str],
        on_reset: Optional[Callable[[ResetEvent], Optional[int]]],
        idle_timeout: float,
        reconnect_delay: Optional[float],
        max_reconnect_delay: float,
    ) -> Any:
        """One follower, sync or async: the same checks and settings for both."""
        _positive("idle_timeout", idle_timeout)
        return kind(
            self._base,
            self._token,
            self._mode(mode),
            since_seq,
            on_reset=on_reset,
            idle_timeout=float(idle_timeout),
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=float(max_reconnect_delay),
            timeout=self._timeout,
            logger=self._log,
        )
