"""``Delivery``: what a Client hands its events to.

Two implementations, one interface (the Client never asks which it holds):

* ``HelperLink`` (_link.py, ``delivery="process"``, the default): the bot's
  end of the delivery helper, a child process that runs the Pipeline;
* ``Pipeline`` (_pipeline.py, ``delivery="thread"``): the same pipeline on two
  threads of the bot's own process.

Both store what they accept in the spool in emit order and deliver it from
there; requests that need an answer (``flush``, ``stats``, ``requeue`` ...)
are ordered behind every event offered before them.
"""

from __future__ import annotations

from typing import List, Optional, Protocol

from .models import ClientStats, DeadLetter, Dropped


class Delivery(Protocol):
    #: ``"process"`` or ``"thread"``: ``Client.delivery``.
    kind: str
    #: The spool it writes to (a side spool when the main one is held by another bot).
    spool_path: str

    def offer(self, payload: bytes, critical: bool) -> Optional[str]:
        """Queues one encoded event without waiting; None, or why it is not
        queued (``"queue_full"``, ``"spool_full"``; never for a critical event).
        The caller reports the drop (``drop()``) or offers it again."""

    def offer_durable(self, payload: bytes, critical: bool, timeout: float) -> Optional[str]:
        """Queues one event and waits until it is committed to the spool, at
        most ``timeout`` s. None: committed; ``"queue_full"`` / ``"spool_full"``:
        not queued, as ``offer()`` says; anything else: why it was not
        committed (it stays queued)."""

    def drop(self, dropped: Dropped) -> None:
        """Counts a dropped event and tells ``on_drop``."""

    def post_state(self, mode: str, body: bytes, gen: int) -> None:
        """Queues a state snapshot of generation ``gen`` (the newest per mode wins)."""

    def state_floor(self, mode: str, gen: int, timeout: float) -> None:
        """A snapshot of generation ``gen`` is being posted directly: queued older ones are stale,
        and one already on its way is waited for (up to ``timeout``), so it cannot land after."""

    def flush(self, timeout: float) -> int:
        """Waits until what was offered before is acknowledged; 0, or the events still waiting."""

    def requeue(self, ids: Optional[List[int]], timeout: float) -> Optional[int]:
        """Moves dead letters (all, or these ids) back to the spool; how many, or None without an answer in time."""

    def pending(self) -> int:
        """Events not yet acknowledged: queued + spooled."""

    def stats(self) -> ClientStats:
        """Raises ClientClosed when the delivery cannot answer."""

    def dead_letters(self, limit: int) -> List[DeadLetter]:
        """Raises ClientClosed when the delivery cannot answer."""

    def close(self, timeout: float) -> Optional[int]:
        """Delivers for ``timeout`` s, stores the rest and stops; the events left, or None
        when it did not finish in time (then ``count_left()`` says what is known)."""

    def count_left(self) -> int:
        """Events not delivered, after a ``close()`` that did not finish."""

    def forget_after_fork(self) -> None:
        """In a forked child: lets go of what tells others that the parent's delivery lives."""
