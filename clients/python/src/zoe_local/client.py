"""``Client``: the bot's handle on zoe-local.

``emit()`` checks and encodes the event in the caller's thread, stamps its
``ts`` and UUIDv7 id (also its idempotency key), and hands it on without I/O
or commit. By default it goes into the emit ring (_ring.py), a shared-memory
file read by the delivery helper, a child process (_helper.py) that writes it
to the spool in group commits and delivers the spool in emit order; with
``delivery="thread"`` the same pipeline (_pipeline.py) runs as two threads of
this process instead.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import itertools
import logging
import os
import re
import threading
import time
import weakref
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._delivery import Delivery
from ._event import EventEncoder
from ._link import HelperFailed, HelperLink
from ._pipeline import Pipeline
from ._reads import Reads
from ._spool import side_spool_path
from ._transport import BaseUrl, call_json
from ._values import Values
from .errors import ClientClosed, InvalidEvent, SpoolError
from .models import (
    MODES,
    ClientStats,
    DeadLetter,
    Dropped,
    StateAck,
)
from .settings import DEFAULT_URL, Settings, default_spool_path

BLOCK_POLL_S = 0.0005
_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f][0-9a-f]{2}", re.IGNORECASE)
OPTIONS = frozenset(f.name for f in dataclasses.fields(Settings))
NOT_QUEUED = ("queue_full", "spool_full")  # what Delivery.offer() answers for an event it did not take


class Client(Reads):
    """See the package README for the guarantees. ``options`` are the fields
    of :class:`Settings` (all optional); ``settings=`` passes a whole one,
    which ``url``, ``token``, ``mode`` and ``options`` then override."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        mode: Optional[str] = None,
        *,
        settings: Optional[Settings] = None,
        **options: Any,
    ) -> None:
        for name, value in (("url", url), ("token", token), ("mode", mode)):
            if value is not None:
                options[name] = value
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise TypeError(
                f"Client() got unexpected keyword arguments {unknown} (its options are the fields of Settings)"
            )
        if settings is None:
            settings = Settings(**options)
        elif not isinstance(settings, Settings):
            raise ValueError(f"settings must be a zoe_local.Settings, got {settings!r}")
        elif options:
            settings = dataclasses.replace(settings, **options)
        if not settings.spool_path:
            settings = dataclasses.replace(settings, spool_path=default_spool_path(settings.mode))
        #: The validated configuration (frozen).
        self.settings = settings
        self._base = BaseUrl(settings.url)
        values = Values(settings.convert, settings.json_default, settings.non_finite, settings.naive_ts)
        # overflow="block": how long an ordinary emit() may wait for room in a
        # full queue (0: drop at once). After one wait ran out, emits drop at
        # once until the queue has room again: a stalled helper must not make
        # every emit() wait.
        self._block_s = settings.block_timeout if settings.overflow == "block" else 0.0
        self._blocked_out = False
        self._token = settings.token
        self._timeout = settings.timeout
        self._log = settings.logger or logging.getLogger("zoe_local")
        self._encoder = EventEncoder(
            settings.mode, settings.source, settings.critical_subtypes, settings.max_request_bytes, values
        )
        self.mode = settings.mode
        self._durable_timeout = settings.durable_timeout
        self._closed = False
        self._forked = False
        self._close_lock = threading.Lock()
        self._left: Optional[int] = None
        self._readers = threading.local()
        self._state_gen = itertools.count(1)
        # None in a forked child until it first delivers (_started()).
        self._delivery: Optional[Delivery] = None
        self._main_spool: str = settings.spool_path  # type: ignore[assignment]
        delivery = self._start_delivery(self._main_spool)
        self.spool_path = delivery.spool_path
        self.delivery = delivery.kind
        _LIVE.add(self)
        self._exit_timeout = settings.exit_timeout
        if settings.exit_timeout is not None:
            atexit.register(self._at_exit)

    def _start_delivery(self, spool_path: str) -> Delivery:
        """The helper (or the threads); run again in a forked child that uses this Client."""
        settings = dataclasses.replace(self.settings, spool_path=spool_path)
        # The link waits on pipes with select(), POSIX only.
        if settings.delivery == "process" and os.name == "posix":
            try:
                self._delivery = HelperLink(settings, self._log)
            except (HelperFailed, OSError) as error:
                self._log.warning("zoe-local: %s; delivering from threads in this process instead", error)
        if self._delivery is None:
            self._delivery = Pipeline(settings, self._log)
        return self._delivery

    @classmethod
    def from_env(cls, **overrides: Any) -> "Client":
        """``ZOE_URL`` (default http://127.0.0.1:8765), ``ZOE_API_TOKEN``, ``ZOE_MODE``, ``ZOE_SPOOL_PATH``."""
        env = os.environ
        kwargs: Dict[str, Any] = {
            "url": env.get("ZOE_URL") or DEFAULT_URL,
            "token": env.get("ZOE_API_TOKEN") or None,
            "mode": env.get("ZOE_MODE") or None,
            "spool_path": env.get("ZOE_SPOOL_PATH") or None,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    async def aopen(cls, *args: Any, **kwargs: Any) -> "Client":
        """``Client(...)`` for asyncio: starting the delivery helper (about 0.1 s)
        runs in a worker thread, so the loop goes on meanwhile."""
        return await asyncio.to_thread(cls, *args, **kwargs)

    def __repr__(self) -> str:
        return f"Client({self._base.text!r}, mode={self.mode!r}, spool={self.spool_path!r}, delivery={self.delivery!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(self._exit_timeout or 5.0)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose(self._exit_timeout or 5.0)

    # -- writing ---------------------------------------------------------------

    def emit(
        self,
        type: str,
        subtype: str,
        body: str,
        *,
        symbol: Optional[str] = None,
        severity: str = "info",
        meta: Optional[Dict[str, Any]] = None,
        mode: Optional[str] = None,
        source: Optional[str] = None,
        ts: Union[str, datetime, float, None] = None,
        idempotency_key: Optional[str] = None,
        durable: bool = False,
    ) -> str:
        """Queues one event and returns its id. Raises only for misuse
        (:class:`InvalidEvent`, :class:`ClientClosed`), never for the service.

        ``durable=True`` waits until the event is committed to the spool (it then
        survives a crash of this process) and raises :class:`SpoolError` if that
        does not happen within ``durable_timeout``.
        """
        if self._closed:
            raise ClientClosed(self._closed_message("emit event"))
        payload, event_id, event_mode, critical = self._encoder.encode(
            type, subtype, body, symbol, severity, meta, source, mode, ts, idempotency_key
        )
        delivery = self._delivery or self._started()
        if durable:
            why = delivery.offer_durable(payload, critical, self._durable_timeout)
        else:
            why = delivery.offer(payload, critical)
        if why == "queue_full":
            why = self._wait_for_room(delivery, payload, durable)
        if why is None:
            if self._blocked_out:
                self._blocked_out = False
        elif why in NOT_QUEUED:
            delivery.drop(Dropped(event_id, event_mode, type, subtype, why))  # type: ignore[arg-type]
        else:
            raise SpoolError(
                f"Cannot confirm event {event_id}: not committed to spool {self.spool_path} ({why}); it stays queued"
            )
        return event_id

    def _wait_for_room(self, delivery: Delivery, payload: bytes, durable: bool) -> Optional[str]:
        """overflow="block": offers an ordinary event again until it is queued or
        block_timeout ran out; what the last offer answered."""
        if not self._block_s or self._blocked_out:
            return "queue_full"
        deadline = time.monotonic() + self._block_s
        while time.monotonic() < deadline:
            time.sleep(BLOCK_POLL_S)
            why = (
                delivery.offer_durable(payload, False, self._durable_timeout)
                if durable
                else delivery.offer(payload, False)
            )
            if why != "queue_full":
                return why
        self._blocked_out = True
        return "queue_full"

    def _closed_message(self, what: str) -> str:
        return f"Cannot {what}: the client is closed"

    def _started(self) -> Delivery:
        """In a forked child that uses its parent's Client: a delivery of the
        child's own, on a side spool next to the parent's (the helper picks
        one when the spool is held; threads take one here), started on the
        first call. Its leftovers are taken over by the Client on the main spool."""
        with self._close_lock:
            if self._delivery is not None:
                return self._delivery
            if self._closed:
                raise ClientClosed(self._closed_message("emit event"))
            # Threads take a side spool here; a helper picks one itself when the spool is held.
            delivery = self._start_delivery(
                self._main_spool if self.delivery == "process" else side_spool_path(self._main_spool)
            )
            self.spool_path = delivery.spool_path
            return delivery

    def __reduce__(self) -> Any:
        raise TypeError(
            "Cannot pickle a zoe_local Client (passing it to a 'spawn' or 'forkserver' child, or to a pool's task): "
            "make a Client in the child (Client.from_env() or the same arguments); a child started with the 'fork' "
            "method may use its parent's Client, and gets a delivery of its own"
        )

    def post_state(
        self,
        snapshot: Optional[Mapping[str, Any]] = None,
        *,
        mode: Optional[str] = None,
        wait: bool = False,
        timeout: Optional[float] = None,
        **fields: Any,
    ) -> Optional[StateAck]:
        """Stores a state snapshot ``{cash, holdings, positions, ...}``.

        By default queued like an event (the newest snapshot per mode wins; not
        spooled, a later one replaces it anyway) and None is returned.
        ``wait=True`` posts it now and returns the service's answer, raising
        ServiceError / ServiceUnreachable.
        """
        mode, body = self._state_body(snapshot, mode, fields)
        if wait:
            return self._post_state_now(mode, body, next(self._state_gen), timeout)
        (self._delivery or self._started()).post_state(mode, body, next(self._state_gen))
        return None

    def _state_body(
        self, snapshot: Optional[Mapping[str, Any]], mode: Optional[str], fields: Dict[str, Any]
    ) -> Tuple[str, bytes]:
        if self._closed:
            raise ClientClosed(self._closed_message("post state"))
        mode = mode or self.mode
        if mode not in MODES:
            raise InvalidEvent(f"Cannot post state: mode must be one of {', '.join(MODES)}, got {mode!r}", "/mode")
        state: Dict[str, Any] = dict(snapshot or {})
        state.update(fields)
        if state.get("mode", mode) != mode:
            raise InvalidEvent(
                f"Cannot post state: the snapshot says mode {state['mode']!r}, the call {mode!r}", "/mode"
            )
        state["mode"] = mode
        return mode, self._encoder.encode_state(state)

    def _post_state_now(self, mode: str, body: bytes, gen: int, timeout: Optional[float]) -> StateAck:
        delivery = self._delivery or self._started()
        # A queued snapshot older than this one must not be sent after it, nor land after it.
        delivery.state_floor(mode, gen, self.settings.timeout if timeout is None else timeout)
        return call_json(self._reader(), "POST", "/local/state", body, timeout)  # type: ignore[no-any-return]

    def flush(self, timeout: float = 10.0) -> int:
        """Waits until every event emitted before the call is acknowledged by the
        service (or dead-lettered), at most ``timeout`` seconds. Returns 0, or
        the number of events still waiting (queued + spooled) at the deadline."""
        if self._left is not None:
            return self._left
        return (self._delivery or self._started()).flush(timeout)

    async def aflush(self, timeout: float = 10.0) -> int:
        """``flush()`` for asyncio: waits in a worker thread, so the loop (and
        ``emit()`` from it) goes on meanwhile."""
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 5.0) -> int:
        """``close()`` for asyncio, in a worker thread."""
        return await asyncio.to_thread(self.close, timeout)

    async def apost_state(
        self,
        snapshot: Optional[Mapping[str, Any]] = None,
        *,
        mode: Optional[str] = None,
        timeout: Optional[float] = None,
        **fields: Any,
    ) -> StateAck:
        """``post_state(..., wait=True)`` for asyncio: checked and encoded in the
        loop's thread (so a bad value raises at once, and the snapshot is taken
        as it is at the call), posted from a worker thread."""
        mode, body = self._state_body(snapshot, mode, fields)
        return await asyncio.to_thread(self._post_state_now, mode, body, next(self._state_gen), timeout)

    def close(self, timeout: float = 5.0) -> int:
        """Delivers what it can within ``timeout`` seconds, stops the sender and
        closes the spool. Returns the number of events left in the spool; they
        are sent by the next Client opened on the same spool_path. Idempotent;
        also runs at interpreter exit (``exit_timeout``)."""
        with self._close_lock:
            if self._left is not None:
                return self._left
            self._closed = True
            delivery = self._delivery
            if delivery is None:
                self._left = 0  # a forked child that never used its parent's Client
                return 0
            left = delivery.close(timeout)
            if left is None:
                # No answer in time: count without it, and never wait for it again.
                left = delivery.count_left()
            self._left = left
            if self._exit_timeout is not None:
                atexit.unregister(self._at_exit)
            if left:
                self._log.info(
                    "zoe-local: closed with %d events left in spool %s; they are sent on the next start",
                    left,
                    self.spool_path,
                )
            return left

    def _at_exit(self) -> None:
        self.close(self._exit_timeout or 5.0)

    def pending(self) -> int:
        """Events not yet acknowledged by the service: queued + spooled."""
        if self._left is not None:
            return self._left
        return (self._delivery or self._started()).pending()

    # -- health ----------------------------------------------------------------

    def stats(self) -> ClientStats:
        return (self._delivery or self._started()).stats()

    def dead_letters(self, limit: int = 100) -> List[DeadLetter]:
        """Events the service refused for good, oldest first, with its error."""
        return (self._delivery or self._started()).dead_letters(limit)

    def requeue_dead_letters(self, ids: Optional[Sequence[int]] = None) -> int:
        """Sends dead letters again (all, or these ids) after the cause was fixed.
        They go to the end of the spool, after the events emitted since."""
        if self._closed:
            raise ClientClosed(self._closed_message("requeue dead letters"))
        wanted = None if ids is None else list(ids)
        count = (self._delivery or self._started()).requeue(wanted, self._durable_timeout)
        if count is None:
            raise SpoolError(
                f"Cannot requeue dead letters: the sender did not get to it within {self._durable_timeout} s"
            )
        return count


_LIVE: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child must not write to the parent's ring and helper (its records
    # would interleave with the parent's): it gets a delivery of its own on
    # first use (_child_delivery). What tells the helper (and the next bot on
    # the spool) that the parent lives must not live on in the child: a
    # worker outliving a killed bot would keep its spool locked.
    for client in list(_LIVE):
        client._forked = True
        client._close_lock = threading.Lock()  # the parent's may have been held by another thread
        try:
            if client._delivery is not None:
                client._delivery.forget_after_fork()
        except Exception:  # an at-fork hook must never fail the fork
            pass
        client._delivery = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
