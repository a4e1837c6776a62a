"""``Pipeline``: queue → spool → service, on two threads (writer.py, sender.py).

It runs in the delivery helper process (helper.py, the default), fed from the
emit ring, or in the bot's own process with ``Client(delivery="thread")``,
fed by ``emit()`` directly. Either way the same code decides what is stored,
sent, retried, dead-lettered and dropped.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence

from .drops import Drops
from .errors import SpoolError
from .failures import Backoff
from .models import ClientStats, DeadLetter, DeliveryProblem, Dropped
from .sender import FlushMarker, Requeue, Sender, StateSnapshot
from .spool import Item, Spool
from .transport import BaseUrl, Transport
from .writer import LINGER_S as WRITER_LINGER_S
from .writer import Writer


class Pipeline:
    def __init__(
        self,
        base: BaseUrl,
        token: Optional[str],
        *,
        spool_path: str,
        spool_synchronous: str,
        spool_max_bytes: int,
        queue_max: int,
        max_batch: int,
        max_request_bytes: int,
        timeout: float,
        backoff: Backoff,
        durable_timeout: float,
        on_dead_letter: Optional[Callable[[DeadLetter], None]],
        on_drop: Optional[Callable[[Dropped], None]],
        on_problem: Optional[Callable[[DeliveryProblem], None]],
        logger: logging.Logger,
        writer_linger: float = WRITER_LINGER_S,
    ) -> None:
        self._log = logger
        self.spool = Spool(spool_path, spool_synchronous)
        self.spool_max_bytes = spool_max_bytes
        self._queue_max = queue_max
        self._durable_timeout = durable_timeout
        self.drop = Drops(on_drop, logger)
        self.queue: Deque[Item] = deque()
        self._control: Deque[Any] = deque()
        self.sender = Sender(
            self.spool,
            Transport(base, token, timeout),
            max_batch=max_batch,
            max_request_bytes=max_request_bytes,
            backoff=backoff,
            on_dead_letter=on_dead_letter,
            on_problem=on_problem,
            logger=logger,
        )
        self.writer = Writer(self.queue, self._control, self.spool, self.sender, logger, writer_linger)
        self.sender.start()
        self.writer.start()

    # -- the emitting side -----------------------------------------------------

    def full(self, critical: bool) -> Optional[str]:
        """Why an event would be dropped now (None: it is queued)."""
        if critical:
            return None
        if len(self.queue) >= self._queue_max:
            return "queue_full"
        return "spool_full" if self.spool_full() else None

    def spool_full(self) -> bool:
        """The spool bound (ordinary events only; critical ones are never refused)."""
        return self.spool.bytes >= self.spool_max_bytes

    def submit(self, payload: bytes, critical: bool, wake: bool = True) -> None:
        """Queues an event for the spool writer; ``wake=False``: the caller
        queues more and calls kick() after the last one."""
        self.queue.append((payload, critical, len(payload)))
        if wake and self.writer.sleeping:
            self.writer.wake.set()

    def kick(self) -> None:
        """Wakes the spool writer for what was queued with ``wake=False``."""
        if self.writer.sleeping:
            self.writer.wake.set()

    def commit_now(self) -> Optional[str]:
        """Commits everything queued in the calling thread; None, or why it could not.

        Handing the commit to the writer thread would cost one or two GIL
        switch intervals (5 ms each) whenever that thread is busy."""
        if self.writer.ingest(force=True, timeout=self._durable_timeout):
            return None
        return self.sender.last_error or f"the spool was busy for {self._durable_timeout} s"

    def submit_durable(self, payload: bytes, critical: bool, event_id: str) -> None:
        self.queue.append((payload, critical, len(payload)))
        why = self.commit_now()
        if why is not None:
            raise SpoolError(
                f"Cannot confirm event {event_id}: not committed to spool {self.spool.path} ({why}); it stays queued"
            )

    def post_state(self, mode: str, body: bytes, gen: int) -> None:
        self._control.append(StateSnapshot(mode, body, gen))
        self.writer.wake.set()

    def state_floor(self, mode: str, gen: int) -> None:
        """A post_state(wait=True) of generation ``gen`` is on its way: older queued snapshots are stale."""
        self.sender.state_floor[mode] = gen

    def marker(self) -> Optional[FlushMarker]:
        """A flush marker behind everything queued so far (None when delivery has stopped)."""
        if not (self.sender.is_alive() and self.writer.is_alive()):
            return None
        marker = FlushMarker()
        self._control.append(marker)
        self.writer.wake.set()
        return marker

    def flush(self, timeout: float) -> int:
        marker = self.marker()
        if marker is None:
            return self.pending()
        return 0 if marker.done.wait(timeout) else self.pending()

    def requeue(self, ids: Optional[Sequence[int]], critical_of: Callable[[bytes], bool]) -> Requeue:
        request = Requeue(None if ids is None else list(ids), critical_of)
        if not self.writer.is_alive():
            request.done.set()
            return request
        self._control.append(request)
        self.writer.wake.set()
        return request

    # -- shutting down -----------------------------------------------------------

    def close(self, timeout: float) -> Optional[int]:
        """Delivers what it can within ``timeout``, stops both threads and closes
        the spool; returns the events left in it, or None when a thread did not
        stop (the spool stays open). Not idempotent (Client is)."""
        deadline = time.monotonic() + timeout
        marker = self.marker()
        if marker is not None:
            marker.done.wait(max(0.0, timeout - min(0.5, timeout * 0.2)))
        self.sender.stop()
        self.sender.transport.abort()  # a request in flight must not hold the deadline
        self.writer.stop()
        self.writer.join(max(0.05, deadline - time.monotonic()))
        # Whatever was queued last goes to the spool, here, past the deadline
        # if need be: a spool commit is local work, and at exit a daemon
        # writer killed inside its transaction would roll it back (events
        # already taken off the queue, gone). ingest() first waits for a
        # commit in progress (it holds the writer's lock).
        try:
            if not self.writer.ingest(force=True, timeout=max(deadline - time.monotonic(), self._durable_timeout)):
                self._log.error(
                    "zoe-local: close(): %d queued events could not be written to the spool %s (%s); they are lost at exit",
                    len(self.queue),
                    self.spool.path,
                    self.sender.last_error or "the spool stayed busy",
                )
        except Exception:
            self._log.exception("zoe-local: close(): could not write the last queued events to the spool")
        self.sender.join(max(0.05, deadline - time.monotonic()))
        if self.sender.is_alive() or self.writer.is_alive():
            self._log.warning(
                "zoe-local: close(): a client thread did not stop within %.1f s; the spool stays open", timeout
            )
            return None
        left = self.pending()
        self.spool.close()
        return left

    # -- health ----------------------------------------------------------------

    def pending(self) -> int:
        return len(self.queue) + self.spool.events

    def stats(self) -> ClientStats:
        s = self.sender
        retry_in = max(0.0, s.next_attempt - time.monotonic()) if self.spool.events else 0.0
        return ClientStats(
            queued=len(self.queue),
            spooled=self.spool.events,
            spooled_bytes=self.spool.bytes,
            dead_letters=self.spool.dead,
            delivered=s.delivered,
            batches=s.batches,
            duplicates=s.duplicates,
            dropped=self.drop.count,
            retries=s.retries,
            status=s.status,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
            last_delivery_at=s.last_delivery_at,
            retry_in=retry_in,
        )

    def dead_letters(self, limit: int) -> List[DeadLetter]:
        return self.spool.dead_letters(limit)
