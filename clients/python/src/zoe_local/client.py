"""``Client``: the bot's handle on zoe-local.

``emit()`` checks and encodes the event in the caller's thread, stamps its
``ts`` and UUIDv7 id (also its idempotency key), appends it to an in-memory
queue and returns: no I/O, no lock, no commit. The sender thread
(sender.py) writes the queue to the spool in group commits (normally within a
millisecond or two) and delivers the spool in emit order.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import re
import threading
import time
from collections import deque
from datetime import datetime
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .errors import ClientClosed, InvalidEvent, SpoolError
from .event import EventEncoder
from .models import (
    CRITICAL_SUBTYPES,
    MODES,
    ClientStats,
    DeadLetter,
    DeliveryProblem,
    Dropped,
    StateAck,
)
from .sender import FlushMarker, Requeue, Sender, StateSnapshot
from .failures import Backoff
from .spool import Item, Spool
from .writer import Writer
from .reads import Reads
from .transport import BaseUrl, Transport, call_json

DEFAULT_URL = "http://127.0.0.1:8765"
MiB = 1024 * 1024
_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f][0-9a-f]{2}", re.IGNORECASE)


def default_spool_path(mode: Optional[str]) -> str:
    """``$XDG_STATE_HOME/zoe-local/spool-<mode>.db`` (``~/.local/state`` without XDG_STATE_HOME)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "zoe-local", f"spool-{mode or 'all'}.db")


def _positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")


class Client(Reads):
    """See the package README for the guarantees; every argument but ``url`` is optional."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: Optional[str] = None,
        mode: Optional[str] = None,
        *,
        source: str = "bot",
        spool_path: Optional[str] = None,
        spool_max_bytes: int = 256 * MiB,
        spool_synchronous: str = "FULL",
        queue_max: int = 100_000,
        max_batch: int = 1000,
        max_request_bytes: int = 1_048_576,
        timeout: float = 10.0,
        backoff_base: float = 0.05,
        backoff_max: float = 5.0,
        max_retry_after: float = 300.0,
        critical_subtypes: Iterable[str] = CRITICAL_SUBTYPES,
        durable_timeout: float = 5.0,
        exit_timeout: Optional[float] = 5.0,
        on_dead_letter: Optional[Callable[[DeadLetter], None]] = None,
        on_drop: Optional[Callable[[Dropped], None]] = None,
        on_problem: Optional[Callable[[DeliveryProblem], None]] = None,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self._base = BaseUrl(url)
        if token is not None and (not isinstance(token, str) or not token or "\n" in token):
            raise ValueError("token must be a non-empty string (ZOE_API_TOKEN of the service)")
        for name, value in (("timeout", timeout), ("backoff_base", backoff_base), ("backoff_max", backoff_max),
                            ("max_retry_after", max_retry_after), ("durable_timeout", durable_timeout)):  # fmt: skip
            _positive(name, value)
        for name, value in (("spool_max_bytes", spool_max_bytes), ("queue_max", queue_max), ("max_request_bytes", max_request_bytes)):
            _positive(name, value, integer=True)
        if not isinstance(max_batch, int) or not 1 <= max_batch <= 1000:
            raise ValueError(f"max_batch must be an integer from 1 to 1000 (the service's cap per request), got {max_batch!r}")
        if exit_timeout is not None:
            _positive("exit_timeout", exit_timeout)
        self._token = token
        self._timeout = float(timeout)
        self._log = logger or logging.getLogger("zoe_local")
        self._encoder = EventEncoder(mode, source, frozenset(critical_subtypes), max_request_bytes)
        self.mode = mode
        self._spool_max_bytes = spool_max_bytes
        self._queue_max = queue_max
        self._durable_timeout = float(durable_timeout)
        self._on_drop = on_drop
        self._dropped = 0
        self._drop_lock = threading.Lock()
        self._last_drop_log = 0.0
        self._closed = False
        self._close_lock = threading.Lock()
        self._left: Optional[int] = None
        self._readers = threading.local()
        self._state_gen = itertools.count(1)
        self._spool = Spool(spool_path or default_spool_path(mode), spool_synchronous)
        self._queue: Deque[Item] = deque()
        self._control: Deque[Any] = deque()
        self._sender = Sender(
            self._spool,
            Transport(self._base, token, timeout),
            max_batch=max_batch,
            max_request_bytes=max_request_bytes,
            backoff=Backoff(float(backoff_base), float(backoff_max), float(max_retry_after)),
            on_dead_letter=on_dead_letter,
            on_problem=on_problem,
            logger=self._log,
        )
        self._writer = Writer(self._queue, self._control, self._spool, self._sender, self._log)
        self._sender.start()
        self._writer.start()
        self._exit_timeout = exit_timeout
        if exit_timeout is not None:
            atexit.register(self._at_exit)

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

    def __repr__(self) -> str:
        return f"Client({self._base.text!r}, mode={self.mode!r}, spool={self._spool.path!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(self._exit_timeout or 5.0)

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
        ts: Union[str, datetime, None] = None,
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
            raise ClientClosed("Cannot emit event: the client is closed")
        payload, event_id, event_mode, critical = self._encoder.encode(
            type, subtype, body, symbol, severity, meta, source, mode, ts, idempotency_key
        )
        queue = self._queue
        if not critical and (len(queue) >= self._queue_max or self._spool.bytes >= self._spool_max_bytes):
            self._drop(event_id, event_mode, type, subtype, "queue_full" if len(queue) >= self._queue_max else "spool_full")
            return event_id
        if durable:
            # The commit runs here, in the caller's thread: handing it to the
            # writer thread would cost one or two GIL switch intervals (5 ms
            # each) whenever this thread is busy.
            queue.append((payload, critical, len(payload)))
            if not self._writer.ingest(force=True, timeout=self._durable_timeout):
                raise SpoolError(
                    f"Cannot confirm event {event_id}: not committed to spool {self._spool.path} "
                    f"({self._sender.last_error or f'the spool was busy for {self._durable_timeout} s'}); it stays queued"
                )
            return event_id
        queue.append((payload, critical, len(payload)))
        if self._writer.sleeping:
            self._writer.wake.set()
        return event_id

    def _drop(self, event_id: str, mode: str, etype: str, subtype: str, reason: str) -> None:
        with self._drop_lock:
            self._dropped += 1
            count = self._dropped
            now = time.monotonic()
            log = now - self._last_drop_log >= 10.0
            if log:
                self._last_drop_log = now
        if log:
            self._log.warning(
                "zoe-local: %s: dropped event %s (%s/%s), %d dropped so far; critical events are still queued",
                reason, event_id, etype, subtype, count,
            )  # fmt: skip
        if self._on_drop is not None:
            try:
                self._on_drop(Dropped(event_id, mode, etype, subtype, reason))  # type: ignore[arg-type]
            except Exception:
                self._log.exception("zoe-local: on_drop callback failed")

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
        if self._closed:
            raise ClientClosed("Cannot post state: the client is closed")
        mode = mode or self.mode
        if mode not in MODES:
            raise InvalidEvent(f"Cannot post state: mode must be one of {', '.join(MODES)}, got {mode!r}", "/mode")
        state: Dict[str, Any] = dict(snapshot or {})
        state.update(fields)
        if state.get("mode", mode) != mode:
            raise InvalidEvent(f"Cannot post state: the snapshot says mode {state['mode']!r}, the call {mode!r}", "/mode")
        state["mode"] = mode
        try:
            text = json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            body = text.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as error:
            raise InvalidEvent(f"Cannot post state: the snapshot is not JSON: {error}") from error
        if "\\u0000" in text or _SURROGATE_ESCAPE.search(text):
            raise InvalidEvent("Cannot post state: NUL characters and lone surrogates are not accepted")
        gen = next(self._state_gen)
        if wait:
            self._sender.state_floor[mode] = gen
            return call_json(self._reader(), "POST", "/local/state", body, timeout)  # type: ignore[no-any-return]
        self._control.append(StateSnapshot(mode, body, gen))
        self._writer.wake.set()
        return None

    def flush(self, timeout: float = 10.0) -> int:
        """Waits until every event emitted before the call is acknowledged by the
        service (or dead-lettered), at most ``timeout`` seconds. Returns 0, or
        the number of events still waiting (queued + spooled) at the deadline."""
        if not (self._sender.is_alive() and self._writer.is_alive()):
            return self.pending()
        marker = FlushMarker()
        self._control.append(marker)
        self._writer.wake.set()
        return 0 if marker.done.wait(timeout) else self.pending()

    def close(self, timeout: float = 5.0) -> int:
        """Delivers what it can within ``timeout`` seconds, stops the sender and
        closes the spool. Returns the number of events left in the spool; they
        are sent by the next Client opened on the same spool_path. Idempotent;
        also runs at interpreter exit (``exit_timeout``)."""
        with self._close_lock:
            if self._left is not None:
                return self._left
            self._closed = True
            deadline = time.monotonic() + timeout
            if self._sender.is_alive() and self._writer.is_alive():
                marker = FlushMarker()
                self._control.append(marker)
                self._writer.wake.set()
                marker.done.wait(max(0.0, timeout - min(0.5, timeout * 0.2)))
            self._sender.stop()
            self._sender.transport.abort()  # a request in flight must not hold the deadline
            self._writer.stop()
            self._writer.join(max(0.05, deadline - time.monotonic()))
            # Whatever emit() queued last goes to the spool, here, past the
            # deadline if need be: a spool commit is local work, and at exit a
            # daemon writer killed inside its transaction would roll it back
            # (events already taken off the queue, gone). ingest() first waits
            # for a commit in progress (it holds the writer's lock).
            try:
                if not self._writer.ingest(force=True, timeout=max(deadline - time.monotonic(), self._durable_timeout)):
                    self._log.error(
                        "zoe-local: close(): %d queued events could not be written to the spool %s (%s); they are lost at exit",
                        len(self._queue), self._spool.path, self._sender.last_error or "the spool stayed busy",
                    )  # fmt: skip
            except Exception:
                self._log.exception("zoe-local: close(): could not write the last queued events to the spool")
            self._sender.join(max(0.05, deadline - time.monotonic()))
            if self._sender.is_alive() or self._writer.is_alive():
                self._log.warning("zoe-local: close(): a client thread did not stop within %.1f s; the spool stays open", timeout)
                return self.pending()
            left = self.pending()
            self._spool.close()
            self._left = left
            if self._exit_timeout is not None:
                atexit.unregister(self._at_exit)
            if left:
                self._log.info("zoe-local: closed with %d events left in spool %s; they are sent on the next start", left, self._spool.path)
            return left

    def _at_exit(self) -> None:
        self.close(self._exit_timeout or 5.0)

    def pending(self) -> int:
        """Events not yet acknowledged by the service: queued + spooled."""
        return len(self._queue) + self._spool.events

    # -- health ----------------------------------------------------------------

    def stats(self) -> ClientStats:
        s = self._sender
        retry_in = max(0.0, s.next_attempt - time.monotonic()) if self._spool.events else 0.0
        return ClientStats(
            queued=len(self._queue),
            spooled=self._spool.events,
            spooled_bytes=self._spool.bytes,
            dead_letters=self._spool.dead,
            delivered=s.delivered,
            batches=s.batches,
            duplicates=s.duplicates,
            dropped=self._dropped,
            retries=s.retries,
            status=s.status,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
            last_delivery_at=s.last_delivery_at,
            retry_in=retry_in,
        )

    def dead_letters(self, limit: int = 100) -> List[DeadLetter]:
        """Events the service refused for good, oldest first, with its error."""
        return self._spool.dead_letters(limit)

    def requeue_dead_letters(self, ids: Optional[Sequence[int]] = None) -> int:
        """Sends dead letters again (all, or these ids) after the cause was fixed.
        They go to the end of the spool, after the events emitted since."""
        crit = self._encoder.critical_subtypes

        def critical_of(payload: bytes) -> bool:
            try:
                e = json.loads(payload)
                return e.get("severity") == "critical" or e.get("subtype") in crit
            except ValueError:
                return False

        request = Requeue(None if ids is None else list(ids), critical_of)
        if self._writer.is_alive():
            self._control.append(request)
            self._writer.wake.set()
            if not request.done.wait(self._durable_timeout):
                raise SpoolError(f"Cannot requeue dead letters: the sender did not get to it within {self._durable_timeout} s")
        else:
            raise ClientClosed("Cannot requeue dead letters: the client is closed")
        return request.count
