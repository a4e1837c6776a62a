"""``Pipeline``: queue → spool → service, on two threads (_writer.py, _sender.py).

It runs in the delivery helper process (_helper.py, the default), fed from the
emit ring, or in the bot's own process with ``Client(delivery="thread")``,
fed by ``emit()`` directly. Either way the same code decides what is stored,
sent, retried, dead-lettered and dropped.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence

from ._drops import Drops
from ._event import payload_is_critical
from ._failures import Backoff
from ._sender import FlushMarker, Requeue, Sender, StateSnapshot
from ._spool import Item, Spool, lock_holder, pid_alive, side_spools
from ._transport import BaseUrl, Transport
from ._writer import LINGER_S as WRITER_LINGER_S
from ._writer import Writer
from .models import ClientStats, DeadLetter, Dropped
from .settings import Settings

ADOPT_WAIT_S = 2.0


class Pipeline:
    """The spool writer and the sender; the ``Delivery`` (_delivery.py) of ``delivery="thread"``."""

    kind = "thread"

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        bot: Optional[int] = None,
        writer_linger: float = WRITER_LINGER_S,
    ) -> None:
        """``settings.spool_path`` is the spool it opens (resolved by the Client); ``bot``: the
        pid of the bot a helper process delivers for; ``writer_linger``: how often the spool
        writer looks for work on its own (0: only when woken, as in the helper)."""
        self._log = logger
        critical = settings.critical_subtypes
        self._critical_of: Callable[[bytes], bool] = lambda payload: payload_is_critical(payload, critical)
        self.spool = Spool(settings.spool_path, settings.spool_synchronous, bot=bot)  # type: ignore[arg-type]
        self.adopted = self._adopt()
        self.spool_max_bytes = settings.spool_max_bytes
        self._queue_max = settings.queue_max
        self._durable_timeout = settings.durable_timeout
        self._drops = Drops(settings.on_drop, logger)
        self.queue: Deque[Item] = deque()
        self._control: Deque[Any] = deque()
        self.sender = Sender(
            self.spool,
            Transport(BaseUrl(settings.url), settings.token, settings.timeout),
            max_batch=settings.max_batch,
            max_request_bytes=settings.max_request_bytes,
            backoff=Backoff(settings.backoff_base, settings.backoff_max, settings.max_retry_after),
            on_dead_letter=settings.on_dead_letter,
            on_problem=settings.on_problem,
            logger=logger,
        )
        self.writer = Writer(self.queue, self._control, self.spool, self.sender, logger, writer_linger)
        self.sender.start()
        self.writer.start()

    @property
    def spool_path(self) -> str:
        return self.spool.path

    # -- the emitting side -----------------------------------------------------

    def offer(self, payload: bytes, critical: bool) -> Optional[str]:
        why = self.full(critical)
        if why is None:
            self.submit(payload, critical)
        return why

    def drop(self, dropped: Dropped) -> None:
        self._drops(dropped)

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

    def commit_now(self, timeout: Optional[float] = None) -> Optional[str]:
        """Commits everything queued in the calling thread, waiting at most
        ``timeout`` (``durable_timeout``) for the spool; None, or why it could not.

        Handing the commit to the writer thread would cost one or two GIL
        switch intervals (5 ms each) whenever that thread is busy."""
        wait = self._durable_timeout if timeout is None else timeout
        if self.writer.ingest(force=True, timeout=wait):
            return None
        return self.sender.last_error or f"the spool was busy for {wait} s"

    def offer_durable(self, payload: bytes, critical: bool, timeout: float) -> Optional[str]:
        why = self.full(critical)
        if why is not None:
            return why
        self.queue.append((payload, critical, len(payload)))
        return self.commit_now(timeout)

    def post_state(self, mode: str, body: bytes, gen: int) -> None:
        self._control.append(StateSnapshot(mode, body, gen))
        self.writer.wake.set()

    def state_floor(self, mode: str, gen: int, timeout: float) -> None:
        """A post_state(wait=True) of generation ``gen`` is on its way: older queued snapshots are stale."""
        self.sender.raise_state_floor(mode, gen, timeout)

    def _adopt(self) -> int:
        """Takes over the side spools of forked workers (or of other Clients on
        this spool_path) whose processes are gone; the events taken over."""
        moved = 0
        if not self.spool.durable:
            return 0
        for path in side_spools(self.spool.path):
            # A worker that just ended: its helper is storing its last events
            # and lets go within moments; worth a short wait (a live worker's
            # spool is left alone).
            deadline = time.monotonic() + ADOPT_WAIT_S
            holder = lock_holder(path)
            while holder is not None and not pid_alive(holder[1]) and pid_alive(holder[0]):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            try:
                if hasattr(self, "writer"):
                    with self.writer._lock:  # the sender's window takes appends in seq order
                        got = self.spool.adopt(path)
                        if got is not None and got[1]:
                            self.sender.spooled(*got)
                else:
                    got = self.spool.adopt(path)  # before the sender: its window reads the spool
            except Exception as error:
                self._log.warning("zoe-local: cannot take over the side spool %s: %s", path, error)
                continue
            if got is not None:
                moved += len(got[1])
                if got[1]:
                    self._log.info("zoe-local: took over %d events from the side spool %s", len(got[1]), path)
        return moved

    def marker(self) -> Optional[FlushMarker]:
        """A flush marker behind everything queued so far (None when delivery
        has stopped), and behind what finished workers left in side spools."""
        if not (self.sender.is_alive() and self.writer.is_alive()):
            return None
        self._adopt()
        marker = FlushMarker()
        self._control.append(marker)
        self.writer.wake.set()
        return marker

    def flush(self, timeout: float) -> int:
        marker = self.marker()
        if marker is None:
            return self.pending()
        return 0 if marker.done.wait(timeout) else self.pending()

    def start_requeue(self, ids: Optional[Sequence[int]]) -> Requeue:
        """Queues the requeue behind what is queued; its ``done`` is set when the sender did it."""
        request = Requeue(None if ids is None else list(ids), self._critical_of)
        if not self.writer.is_alive():
            request.done.set()
            return request
        self._control.append(request)
        self.writer.wake.set()
        return request

    def requeue(self, ids: Optional[List[int]], timeout: float) -> Optional[int]:
        request = self.start_requeue(ids)
        return request.count if request.done.wait(timeout) else None

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

    def count_left(self) -> int:
        return self.pending()

    def forget_after_fork(self) -> None:
        self.spool.forget_after_fork()

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
            dropped=self._drops.count,
            retries=s.retries,
            status=s.status,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
            last_delivery_at=s.last_delivery_at,
            retry_in=retry_in,
            states_delivered=s.states_delivered,
        )

    def dead_letters(self, limit: int) -> List[DeadLetter]:
        return self.spool.dead_letters(limit)
