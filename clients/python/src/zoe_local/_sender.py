"""The background sender: sends the spool to the service in emit order (the
spool writer thread, _writer.py, fills it from what ``emit()`` queued).

One batch is in flight at a time, oldest first, so the service assigns seqs in
emit order. A batch the service acknowledged (201, or 200 = all duplicates) is
removed from the spool. Failures are sorted by what they say (_failures.py):

* connection errors, timeouts, 408/425/5xx, 429/503: retried, with capped
  full-jitter backoff or exactly the Retry-After the service sent;
* the service's verdict on events (400 invalid/malformed, 409 conflict,
  413 too large): the events the error's JSON pointers name (``/3/meta`` is
  event 3) go to the dead-letter table and the rest is re-sent at once; when
  no event is named the batch is halved until the culprit is alone;
* anything else (401/403 token, 404 wrong URL, 415): a configuration problem
  no single event causes: nothing is dead-lettered, the events stay spooled
  and the sender keeps retrying at the backoff cap.

While the service refuses ordinary events (503 backlog_full/disk_low with
``critical: false``), critical events (fills, kill switch) overtake the waiting
ordinary ones: the service keeps a reserve for them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from . import _failures as failures
from ._spool import Item, Spool
from ._transport import Response, Transport
from ._window import Window, body, cut
from .errors import ServiceError, ServiceUnreachable
from .models import DeadLetter, DeliveryProblem

EVENTS_PATH = "/local/events"
IDLE_WAIT_S = 1.0


class FlushMarker:
    """Put in the control queue by flush(): done once every event emitted before it is resolved."""

    __slots__ = ("done", "upto", "snaps")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.upto: Optional[int] = None
        self.snaps: List["StateSnapshot"] = []  # queued post_state() snapshots it also waits for


class Requeue:
    """requeue_dead_letters() runs on the sender thread, so the window stays exact."""

    __slots__ = ("ids", "critical_of", "done", "count")

    def __init__(self, ids: Optional[List[int]], critical_of: Callable[[bytes], bool]) -> None:
        self.ids = ids
        self.critical_of = critical_of
        self.done = threading.Event()
        self.count = 0


class StateSnapshot:
    """A queued post_state(); ``gen`` orders it against post_state(wait=True) calls."""

    __slots__ = ("mode", "body", "gen")

    def __init__(self, mode: str, body: bytes, gen: int) -> None:
        self.mode = mode
        self.body = body
        self.gen = gen


class Sender(threading.Thread):
    def __init__(
        self,
        spool: Spool,
        transport: Transport,
        *,
        max_batch: int,
        max_request_bytes: int,
        backoff: failures.Backoff,
        on_dead_letter: Optional[Callable[[DeadLetter], None]],
        on_problem: Optional[Callable[[DeliveryProblem], None]],
        logger: logging.Logger,
    ) -> None:
        super().__init__(name="zoe-local-sender", daemon=True)
        self.spool = spool
        self.transport = transport
        self.window = Window(spool)
        self.max_batch = max_batch
        self.batch_limit = max_batch
        self.max_bytes = max_request_bytes
        self.suspect_end: Optional[int] = None  # last seq of a refused batch being halved
        self.backoff = backoff
        self.on_dead_letter = on_dead_letter
        self.on_problem = on_problem
        self.log = logger
        # Guards window, markers and states, shared with the spool writer thread.
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.markers: List[FlushMarker] = []
        self.states: Dict[str, StateSnapshot] = {}
        # Per mode, the gen of the newest post_state(wait=True): older queued snapshots are stale.
        self.state_floor: Dict[str, int] = {}
        # Held while a snapshot is on its way: a post_state(wait=True) waits for it,
        # or that older snapshot could reach the service after the newer one.
        self.state_sending = threading.Lock()
        self.next_attempt = 0.0
        self.told_to_wait = False  # next_attempt is the service's Retry-After, not our backoff
        self.state_next_attempt = 0.0
        self.critical_next_attempt = 0.0
        self.ordinary_refused_until = 0.0
        self.critical_pending = True  # the spool may hold critical rows from a previous run
        # stats, read by Client.stats() from other threads
        self.delivered = 0
        self.states_delivered = 0
        self.batches = 0
        self.duplicates = 0
        self.retries = 0
        self.status = "ok"
        self.problem: Optional[tuple] = None  # (kind, code) of the events' current problem
        self.state_problem: Optional[tuple] = None
        self.last_error: Optional[str] = None
        self.last_error_at: Optional[float] = None
        self.last_delivery_at: Optional[float] = None

    # -- the loop --------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self._step():
                    continue
            except Exception:  # a bug must not end delivery silently
                self.log.exception("zoe-local: sender step failed; retrying in 1 s")
                self.stopping.wait(1.0)
                continue
            self._sleep()

    def _step(self) -> bool:
        """One unit of work; False when there is nothing to do before the next deadline."""
        now = time.monotonic()
        if self.states and now >= self.state_next_attempt:
            self._send_state()
            return True
        with self.lock:
            unsent = self.window.has_unsent()
        if unsent:
            if now >= self.next_attempt:
                self._send_batch()
                self._settle_markers()
                return True
            refused = now < self.ordinary_refused_until
            if refused and self.critical_pending and now >= self.critical_next_attempt and self._send_critical():
                self._settle_markers()
                return True
        self._settle_markers()
        return False

    def _sleep(self) -> None:
        """Until the next deadline, or until the writer spooled something."""
        now = time.monotonic()
        deadline = now + IDLE_WAIT_S
        with self.lock:
            unsent = self.window.has_unsent()
        if unsent:
            deadline = min(deadline, self.next_attempt)
            if now < self.ordinary_refused_until and self.critical_pending:
                deadline = min(deadline, self.critical_next_attempt)
        if self.states:
            deadline = min(deadline, self.state_next_attempt)
        self.wake.wait(max(0.0, deadline - now))
        self.wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # -- from the spool writer ---------------------------------------------------

    def spooled(self, first: int, items: List[Item]) -> None:
        """Rows just committed with seqs first, first+1, ..."""
        with self.lock:
            self.window.appended(first, items)
        if not self.critical_pending and any(it[1] for it in items):
            self.critical_pending = True
        if self.problem is not None and self.problem[0] == "spool":
            self._recovered()
        self.wake.set()

    def watch(self, marker: FlushMarker) -> None:
        with self.lock:
            marker.snaps = list(self.states.values())
            self.markers.append(marker)
        self._settle_markers()
        # Someone waits for delivery: retry now rather than sleep out a backoff
        # (the service may have been back for seconds). A Retry-After the
        # service sent is still honoured.
        now = time.monotonic()
        if self.next_attempt > now and not self.told_to_wait:
            self.next_attempt = now
        self.wake.set()

    def state(self, snapshot: StateSnapshot) -> None:
        with self.lock:
            self.states[snapshot.mode] = snapshot  # the newest snapshot per mode wins
        self.wake.set()

    def requeue(self, request: Requeue) -> None:
        try:
            first, items = self.spool.requeue(request.ids, request.critical_of)
            request.count = len(items)
            self.spooled(first, items)
        finally:
            request.done.set()

    def report(self, kind: str, message: str) -> None:
        self._problem(kind, message)

    def _settle_markers(self) -> None:
        if not self.markers:
            return
        with self.lock:
            low = self.window.lowest()
            keep = []
            for m in self.markers:
                # A snapshot replaced by a newer one is never sent: not waited for.
                if m.upto is not None and m.upto < low and all(self.states.get(x.mode) is not x for x in m.snaps):
                    m.done.set()
                else:
                    keep.append(m)
            self.markers = keep

    # -- spool → service -------------------------------------------------------

    def _post(self, items: List[Item]) -> Optional[Response]:
        try:
            return self.transport.request("POST", EVENTS_PATH, body(items))
        except ServiceUnreachable as error:
            self._retry_later("unreachable", str(error), None)
            return None

    def _send_batch(self) -> None:
        with self.lock:
            k, nbytes = self.window.cut(self.batch_limit, self.max_bytes)
            seqs, items = self.window.head(k)
        resp = self._post(items)
        if resp is None:
            return
        if resp.status < 300:
            if self._acknowledged(seqs, nbytes, resp):
                with self.lock:
                    self.window.pop(k, nbytes)
                if self.suspect_end is not None and seqs[-1] >= self.suspect_end:
                    self.suspect_end = None
                    self.batch_limit = self.max_batch
            return
        err = resp.error()
        if failures.is_verdict(err):
            self._isolate(seqs, items, err)
        elif failures.refuses_ordinary_only(err):
            wait = self._retry_later("refused", err.message, err)
            self.ordinary_refused_until = time.monotonic() + wait
        else:
            self._retry_later(failures.kind(err.status), err.message, err)

    def _send_critical(self) -> bool:
        """While ordinary events are refused: critical ones, oldest first, ahead of the queue."""
        seqs, items = self.spool.critical(self.max_batch)
        k, nbytes = cut(items, self.max_batch, self.max_bytes)
        seqs, items = seqs[:k], items[:k]
        if not seqs:
            self.critical_pending = False
            return False
        resp = self._post(items)
        if resp is None:
            self.critical_next_attempt = self.next_attempt
        elif resp.status < 300:
            if self._acknowledged(seqs, nbytes, resp):
                with self.lock:
                    self.window.discard(set(seqs))
        else:
            err = resp.error()
            if failures.is_verdict(err):
                self._isolate(seqs, items, err)
            else:
                self.critical_next_attempt = time.monotonic() + self.backoff.next(err.retry_after)
        return True

    def _acknowledged(self, seqs: List[int], nbytes: int, resp: Response) -> bool:
        """Removes acknowledged rows. A 2xx must carry one acknowledgement per
        event; anything else (a proxy's page, a cut answer) is no proof of
        storage and is retried, which the idempotency keys make safe."""
        if resp.body.count(b'"seq":') != len(seqs):
            self._retry_later(
                "unreachable", f"a {resp.status} answer without {len(seqs)} acknowledgements: {resp.body[:120]!r}", None
            )
            return False
        self.spool.remove(seqs, nbytes)
        self.delivered += len(seqs)
        self.batches += 1
        self.duplicates += len(seqs) if resp.status == 200 else resp.body.count(b'"duplicate":true')
        self.last_delivery_at = time.time()
        self.backoff.reset()
        self.next_attempt = 0.0
        if self.problem is not None or self.state_problem is not None:
            self._recovered()
        return True

    def _isolate(self, seqs: List[int], items: List[Item], err: ServiceError) -> None:
        """A verdict on events: dead-letter the named ones, or halve until the culprit is alone."""
        named = failures.named_indices(err.details, len(seqs))
        if not named and len(seqs) > 1:
            if err.status == 413:  # learn the service's request limit: this body was too big
                self.max_bytes = min(self.max_bytes, len(seqs) + sum(it[2] for it in items))
            self.batch_limit = max(1, len(seqs) // 2)
            self.suspect_end = seqs[-1]
            self.log.info(
                "zoe-local: the service refused a batch of %d (%s); halving it to find the culprit", len(seqs), err.code
            )
            return
        picked = sorted(named) if named else [0]
        letters = self.spool.bury(
            [(seqs[i], items[i][0]) for i in picked], err.status, err.code, err.message, err.details
        )
        with self.lock:
            self.window.discard({seqs[i] for i in picked})
        for letter in letters:
            self.log.warning(
                "zoe-local: event %s dead-lettered: %s %s: %s",
                letter.event.get("id"),
                err.status,
                err.code,
                err.message,
            )
            if self.on_dead_letter is not None:
                _call(self.on_dead_letter, letter, self.log)

    def raise_state_floor(self, mode: str, gen: int, timeout: float) -> None:
        """Queued snapshots of ``mode`` older than ``gen`` are stale; waits (up to ``timeout``)
        for a snapshot already on its way."""
        with self.lock:
            self.state_floor[mode] = max(gen, self.state_floor.get(mode, 0))
        if self.state_sending.acquire(timeout=max(0.0, timeout)):
            self.state_sending.release()

    def _send_state(self) -> None:
        with self.state_sending:
            self._send_state_held()

    def _send_state_held(self) -> None:
        with self.lock:
            mode, snap = next(iter(self.states.items()))
            if snap.gen < self.state_floor.get(mode, 0):
                del self.states[mode]
                return
        try:
            resp = self.transport.request("POST", "/local/state", snap.body)
        except ServiceUnreachable as error:
            self.state_next_attempt = time.monotonic() + self.backoff.next()
            self._problem("unreachable", str(error), what=f"the {mode} state snapshot is kept and retried")
            return
        if resp.status < 300 or failures.kind(resp.status) == "rejected":
            with self.lock:
                if self.states.get(mode) is snap:
                    del self.states[mode]
        if resp.status < 300:
            self.delivered += 1
            self.states_delivered += 1
            if self.state_problem is not None:
                self._recovered()
            return
        err = resp.error()
        if failures.kind(err.status) != "rejected":
            self.state_next_attempt = time.monotonic() + self.backoff.next(err.retry_after)
            self._problem(
                failures.kind(err.status), err.message, err, what=f"the {mode} state snapshot is kept and retried"
            )
            return
        self._problem("rejected", err.message, err, what=f"the {mode} state snapshot is refused and dropped")

    # -- failures --------------------------------------------------------------

    def _retry_later(self, kind: str, message: str, err: Optional[ServiceError]) -> float:
        wait = self.backoff.next(None if err is None else err.retry_after)
        self.retries += 1
        self.next_attempt = time.monotonic() + wait
        self.told_to_wait = err is not None and err.retry_after is not None
        self._problem(kind, message, err, wait)
        return wait

    def _problem(
        self,
        kind: str,
        message: str,
        err: Optional[ServiceError] = None,
        retry_in: Optional[float] = None,
        what: Optional[str] = None,
    ) -> None:
        """``what`` says what waits: the spooled events (the default) or a state snapshot."""
        self.last_error = message if err is None else f"{err.status} {err.code}: {err.message}"
        if what is not None:
            self.last_error = f"POST /local/state: {self.last_error}" if err is not None else self.last_error
        self.last_error_at = time.time()
        self.status = kind
        # Events and state snapshots fail side by side in an outage: one
        # problem each, so that neither hides the other and alternating
        # failures do not log every retry.
        key = (kind, None if err is None else err.code)
        if what is None:
            if self.problem == key:
                return
            self.problem = key
        else:
            if self.state_problem == key:
                return
            self.state_problem = key
        status, code = (None, None) if err is None else (err.status, err.code)
        if what is None:
            what = f"{self.spool.events} events stay spooled and are retried"
        self.log.warning("zoe-local: %s: %s; %s", kind, self.last_error, what)
        if self.on_problem is not None:
            _call(self.on_problem, DeliveryProblem(kind, self.last_error, status, code, retry_in), self.log)  # type: ignore[arg-type]

    def _recovered(self) -> None:
        self.problem = self.state_problem = None
        self.status = "ok"
        self.last_error = None  # last_error_at keeps when the last one was
        self.log.info("zoe-local: delivering again")
        if self.on_problem is not None:
            _call(self.on_problem, DeliveryProblem("recovered", "delivering again"), self.log)


def _call(callback: Callable[[Any], None], arg: Any, log: logging.Logger) -> None:
    try:
        callback(arg)
    except Exception:
        log.exception("zoe-local: callback %r failed", callback)
