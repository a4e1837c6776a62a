"""The spool writer: moves what ``emit()`` queued into the spool in group
commits, on its own thread, so how long an emitted event lives only in memory
never depends on the network (a hung service must not widen the window in
which a crash of the bot loses events). The sender thread delivers what it
commits.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Deque, List

from ._sender import FlushMarker, Requeue, Sender
from ._spool import Item, Spool

RETRY_S = 1.0
IDLE_WAIT_S = 1.0
LINGER_S = 0.001
IDLE_AFTER_S = 0.25


class Writer(threading.Thread):
    def __init__(
        self,
        queue: Deque[Item],
        control: Deque[Any],
        spool: Spool,
        sender: Sender,
        logger: logging.Logger,
        linger: float = LINGER_S,
    ) -> None:
        super().__init__(name="zoe-local-spool", daemon=True)
        self.queue, self.control = queue, control
        self._lock = threading.Lock()  # one drain at a time: the thread's, or a durable emit's
        self.spool = spool
        self.sender = sender
        self.log = logger
        # 0: never poll, sleep until woken (the delivery helper wakes it once
        # per batch it queues; no emit() of the bot pays for the wake-up there).
        self.linger = linger
        self.wake = threading.Event()
        self.sleeping = False  # True: emit() must set `wake`
        self.stopping = threading.Event()
        self.retry_at = 0.0
        self.last_activity = 0.0
        self.committed = 0  # events taken off the queue and stored, ever

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.ingest()
            except Exception:  # a bug must not end spooling silently
                self.log.exception("zoe-local: spool writer failed; retrying in 1 s")
                self.stopping.wait(RETRY_S)
            self._sleep()

    def _sleep(self) -> None:
        """While events flow it polls every LINGER_S and emit() does not signal
        it: waking a thread costs the caller a syscall and, on a busy machine,
        often its CPU (the kernel runs the woken thread first), which was most
        of emit()'s tail. After IDLE_AFTER_S without events it sleeps until
        emit() wakes it, once per idle spell."""
        now = time.monotonic()
        if now < self.retry_at:
            self.wake.wait(self.retry_at - now)
        elif self.queue or self.control:
            return
        elif self.linger and now - self.last_activity < IDLE_AFTER_S:
            self.wake.wait(self.linger)
        else:
            self.sleeping = True
            if not (self.queue or self.control):
                self.wake.wait(IDLE_WAIT_S)
            self.sleeping = False
        self.wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def ingest(self, force: bool = False, timeout: float = -1) -> bool:
        """Writes everything queued so far to the spool in one transaction.
        True when it is all committed (also when there was nothing to write).

        ``force``: now, even while a failed write waits for its retry (the
        caller is a durable emit or close()). Control entries are taken before
        the events, so an entry queued after an event never sees it unspooled."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            return self._ingest(force)
        finally:
            self._lock.release()

    def _ingest(self, force: bool) -> bool:
        now = time.monotonic()
        if now < self.retry_at and not force:
            return False
        control = [self.control.popleft() for _ in range(len(self.control))]
        q = self.queue
        if q:
            pop = q.popleft
            items: List[Item] = [pop() for _ in range(len(q))]
            self.last_activity = now
            try:
                first = self.spool.append(items)
            except Exception as error:
                q.extendleft(reversed(items))  # keep emit order; try again shortly
                self.control.extendleft(reversed(control))
                self.retry_at = now + RETRY_S
                self.sender.report("spool", f"Cannot write spool {self.spool.path}: {error}")
                return False
            self.committed += len(items)
            self.sender.spooled(first, items)
        for entry in control:
            if isinstance(entry, FlushMarker):
                entry.upto = self.spool.next_seq - 1
                self.sender.watch(entry)
            elif isinstance(entry, Requeue):
                self.sender.requeue(entry)
            else:
                self.sender.state(entry)
        return True
