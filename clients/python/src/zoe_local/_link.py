"""``HelperLink``: the bot's end of the delivery helper (_helper.py).

``submit()`` is what ``emit()`` costs beyond encoding: a lock, a memcpy into
the emit ring (_ring.py) and, only when the helper sleeps, one pipe write. The
one thread this adds to the bot's process blocks on the helper's stdout and
wakes for replies, log records and callbacks, not per event.

A helper that dies is started again on the same ring (the tail it published
says what is stored); events wait in the ring meanwhile.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from . import _ring as R
from ._drops import Drops
from ._spool import _FileLock
from .errors import ClientClosed, SpoolError
from .models import ClientStats, DeadLetter, DeliveryProblem, Dropped
from .settings import Settings

START_TIMEOUT_S = 30.0
RESPAWN_S = (0.2, 1.0, 5.0)
PUMP_S = 0.002
# How long close() waits for the helper's answer past its deadline; a helper
# that has not answered by then finishes on its own (the ring keeps what it
# had not committed, and the next start recovers it).
CLOSE_MARGIN_S = 0.5
_LAUNCH = "import sys; sys.path.insert(0, sys.argv[1]); from zoe_local._helper import main; main()"
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _close_pipes(proc: subprocess.Popen) -> None:
    # Through the file objects: closing their descriptors with os.close()
    # would leave the objects to close the same numbers again when collected,
    # by then perhaps another helper's pipe.
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


def _line(fd: int, deadline: float) -> bytes:
    """One line, a byte at a time: a buffered read could take lines after it
    that the reader thread's file object would then never see."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 1) if ready else b""
        if not chunk:
            return data
        data += chunk
    return data


class HelperFailed(Exception):
    """The helper process could not be started (not a spool problem)."""


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Dict[str, Any] = {}


class HelperLink:
    """The ``Delivery`` (_delivery.py) of ``delivery="process"``."""

    kind = "process"

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        spool_path: str = settings.spool_path  # type: ignore[assignment]
        durable = spool_path != ":memory:"
        if durable:
            os.makedirs(os.path.dirname(os.path.abspath(spool_path)), exist_ok=True)
        self.ring_path = R.new_ring_path(spool_path if durable else None)
        self._ring_lock = _FileLock(self.ring_path + ".lock")
        self.ring = R.RingProducer(self.ring_path, settings.ring_bytes)
        self._settings = settings
        self._queue_max = settings.queue_max
        self._callbacks = {
            "dead_letter": (settings.on_dead_letter, DeadLetter),
            "drop": (settings.on_drop, Dropped),
            "problem": (settings.on_problem, DeliveryProblem),
        }
        self._log = logger
        # Drops for a full ring, decided here; a full spool is the helper's to count.
        self._drops = Drops(settings.on_drop, logger)
        self._lock = threading.Lock()  # the ring's producer side
        self._overflow: Deque[Tuple[int, bytes]] = deque()  # critical events and controls while the ring is full
        self._pumping = False
        self._rung_for = -1  # the helper's sleep the doorbell was rung for
        self._ids = itertools.count(1)
        self._waiters: Dict[int, _Waiter] = {}
        self._closing = False
        self._closed = False  # close() returned: no helper answers any more
        self._stop_respawn = threading.Event()
        self._gone = threading.Event()  # the helper exited and will not be started again
        self.spool_path = spool_path
        self.proc: Optional[subprocess.Popen] = None
        try:
            self._spawn()
        except BaseException:
            self._remove_ring()
            raise
        self._reader = threading.Thread(target=self._read_loop, name="zoe-local-helper-link", daemon=True)
        self._reader.start()

    # -- the helper process --------------------------------------------------------

    def _spawn(self) -> None:
        """Starts a helper and waits for its ``ready``; SpoolError / HelperFailed otherwise."""
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _LAUNCH, _PACKAGE_PARENT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except (OSError, ValueError) as error:
            raise HelperFailed(f"Cannot start the delivery helper ({sys.executable!r}): {error}") from error
        assert proc.stdin is not None and proc.stdout is not None
        try:
            start = {
                "settings": self._settings.to_json(),
                "ring": self.ring_path,
                "log_level": self._log.getEffectiveLevel(),
            }
            proc.stdin.write(json.dumps(start).encode() + b"\n")
            proc.stdin.flush()
            self._first_line(proc)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        self._stdin = proc.stdin.fileno()
        os.set_blocking(self._stdin, False)
        self.proc = proc
        self.ring.refresh()

    def _first_line(self, proc: subprocess.Popen) -> None:
        """Until ``ready`` (log records before it, e.g. of a recovery, are passed on)."""
        assert proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            line = _line(proc.stdout.fileno(), deadline)
            try:
                msg = json.loads(line) if line else {}
            except ValueError:
                msg = {}
            if msg.get("ready"):
                # A held spool makes the helper pick a side spool (helper._open_waiting).
                self.spool_path = msg.get("spool_path") or self.spool_path
                # A helper started again stays on it.
                self._settings = dataclasses.replace(self._settings, spool_path=self.spool_path)
                return
            if "log" in msg:
                self._dispatch(msg)
                continue
            if msg.get("spool"):
                raise SpoolError(msg["error"])
            code = proc.poll()
            raise HelperFailed(f"The delivery helper did not start (exit {code}): {msg.get('error') or line[:200]!r}")

    def _read_loop(self) -> None:
        """Replies, log records and callbacks, until the helper's stdout closes."""
        while True:
            proc = self.proc
            assert proc is not None and proc.stdout is not None
            for line in proc.stdout:
                try:
                    self._dispatch(json.loads(line))
                except Exception:
                    self._log.exception("zoe-local: bad message from the delivery helper: %r", line[:200])
            code = proc.wait()
            if self._closing:
                self._give_up()
                return
            _close_pipes(proc)
            self._log.error(
                "zoe-local: the delivery helper (pid %d) exited with %s; starting it again on the same ring",
                proc.pid,
                code,
            )
            if not self._respawn():
                self._give_up()
                return

    def _give_up(self) -> None:
        """No helper will answer again: whoever waits for an answer stops waiting."""
        self._gone.set()
        for rid in list(self._waiters):
            waiter = self._waiters.pop(rid, None)
            if waiter is not None:
                waiter.done.set()  # an empty reply: no answer

    def _respawn(self) -> bool:
        for attempt in itertools.count():
            if self._stop_respawn.wait(RESPAWN_S[min(attempt, len(RESPAWN_S) - 1)]) or self._closing:
                return False
            try:
                self._spawn()  # not under the lock: emit() must not wait for a start
                return True
            except (SpoolError, HelperFailed) as error:
                if attempt % 10 == 0:
                    self._log.error("zoe-local: cannot start the delivery helper again: %s", error)
        return False  # pragma: no cover

    def _dispatch(self, msg: Dict[str, Any]) -> None:
        if "re" in msg:
            waiter = self._waiters.pop(msg["re"], None)
            if waiter is not None:
                waiter.reply = msg
                waiter.done.set()
        elif "log" in msg:
            self._log.log(msg["log"], "%s", msg["msg"])
        else:
            for kind, (callback, shape) in self._callbacks.items():
                if kind in msg:
                    if callback is not None:
                        try:
                            callback(shape(**msg[kind]))
                        except Exception:
                            self._log.exception("zoe-local: on_%s callback failed", kind)

    # -- the emitting side -------------------------------------------------------

    def offer(self, payload: bytes, critical: bool) -> Optional[str]:
        """Puts one event in the ring; "queue_full" when it is full and the event is not critical."""
        ring = self.ring
        with self._lock:
            if not self._overflow:
                if ring.written - ring.consumed >= self._queue_max:
                    ring.refresh()
                    room = ring.written - ring.consumed < self._queue_max
                else:
                    room = True
                if room and ring.put(2 if critical else 1, payload):  # CRITICAL_EVENT, EVENT
                    if critical:  # ends the helper's linger: a fill goes out at once
                        self._bell(always=True)
                    elif ring.mm[128]:  # the helper sleeps: ring the doorbell (once per sleep)
                        self._bell()
                    return None
            if not critical:
                return "queue_full"
            self._overflow.append((R.CRITICAL_EVENT, payload))
            self._pump()
            return None

    def drop(self, dropped: Dropped) -> None:
        self._drops(dropped)

    def _put(self, kind: int, body: bytes) -> None:
        """An ordered record (control, durable event): never dropped, and the
        helper is woken for it at once (someone waits for its answer). Lock held."""
        if self._overflow or not self.ring.put(kind, body):
            self._overflow.append((kind, body))
            self._pump()
        else:
            self._bell(always=True)

    def _bell(self, always: bool = False) -> None:
        if not always:
            if not self.ring.consumer_sleeping:
                return
            sleep = self.ring.consumer_sleep()
            if sleep == self._rung_for:
                return
            self._rung_for = sleep
        try:
            os.write(self._stdin, b"\n")
        except (BlockingIOError, OSError):
            pass  # full: it is awake anyway; gone: it is being restarted

    def _pump(self) -> None:
        """Moves the overflow into the ring as room appears, on a thread of its own. Lock held."""
        if self._pumping:
            return
        self._pumping = True

        def run() -> None:
            while True:
                with self._lock:
                    while self._overflow and self.ring.put(*self._overflow[0]):
                        self._overflow.popleft()
                    self._bell()
                    if not self._overflow:
                        self._pumping = False
                        return
                time.sleep(PUMP_S)

        threading.Thread(target=run, name="zoe-local-overflow", daemon=True).start()

    def _ask(self, kind: int, body: Dict[str, Any], timeout: float, prefix: bytes = b"") -> Optional[Dict[str, Any]]:
        """Sends a request (ordered, through the ring) and waits for its reply."""
        waiter = _Waiter()
        rid = next(self._ids)
        self._waiters[rid] = waiter
        data = rid.to_bytes(8, "little") + prefix if kind != R.CONTROL else json.dumps({**body, "id": rid}).encode()
        with self._lock:
            self._put(kind, data)
        if self._gone.is_set():  # after registering: _give_up() either saw this waiter or set _gone first
            self._waiters.pop(rid, None)
            return None
        if waiter.done.wait(timeout) and waiter.reply:
            return waiter.reply
        self._waiters.pop(rid, None)
        return None

    def offer_durable(self, payload: bytes, critical: bool, timeout: float) -> Optional[str]:
        kind = R.DURABLE_CRITICAL_EVENT if critical else R.DURABLE_EVENT
        reply = self._ask(kind, {}, timeout, prefix=payload)
        if reply is None:
            return f"no answer from the delivery helper within {timeout} s"
        return None if reply.get("ok") else reply.get("error") or ""

    def post_state(self, mode: str, body: bytes, gen: int) -> None:
        with self._lock:
            self._put(
                R.CONTROL, json.dumps({"op": "state", "mode": mode, "gen": gen, "body": body.decode("utf-8")}).encode()
            )

    def state_floor(self, mode: str, gen: int, timeout: float) -> None:
        # Answered once the helper sent no older snapshot still on its way; no answer in time: post anyway.
        self._ask(R.CONTROL, {"op": "floor", "mode": mode, "gen": gen, "timeout": timeout}, timeout)

    def flush(self, timeout: float) -> int:
        reply = self._ask(R.CONTROL, {"op": "flush", "timeout": timeout}, timeout)
        return 0 if reply is not None and reply.get("ok") else self.pending()

    def requeue(self, ids: Optional[List[int]], timeout: float) -> Optional[int]:
        reply = self._ask(R.CONTROL, {"op": "requeue", "ids": ids, "timeout": timeout}, timeout)
        return None if reply is None or not reply.get("ok") else int(reply["count"])

    # -- health ----------------------------------------------------------------

    def in_ring(self) -> int:
        with self._lock:
            self.ring.refresh()
            return self.ring.written - self.ring.consumed + sum(1 for k, _ in self._overflow if k != R.CONTROL)

    def _stats(self, timeout: float = 5.0) -> Optional[ClientStats]:
        """Ordered like a flush: drops decided for events emitted before the call are counted."""
        reply = self._ask(R.CONTROL, {"op": "stats"}, timeout)
        if reply is None:
            return None
        s = dict(reply["stats"])
        s["queued"] = self.in_ring()
        s["dropped"] += self._drops.count
        return ClientStats(**s)

    def stats(self) -> ClientStats:
        if self._closed:
            raise ClientClosed("Cannot read stats: the client is closed (its delivery helper has stopped)")
        stats = self._stats()
        if stats is None:
            raise ClientClosed("Cannot read stats: the delivery helper did not answer (closed, or being restarted)")
        return stats

    def pending(self) -> int:
        stats = self._stats()
        return self.in_ring() if stats is None else stats.queued + stats.spooled

    def dead_letters(self, limit: int) -> List[DeadLetter]:
        reply = self._ask(R.CONTROL, {"op": "dead_letters", "limit": limit}, 5.0)
        if reply is None:
            raise ClientClosed(
                "Cannot read dead letters: the delivery helper did not answer (closed, or being restarted)"
            )
        return [DeadLetter(**d) for d in reply["letters"]]

    # -- shutting down -----------------------------------------------------------

    def close(self, timeout: float) -> Optional[int]:
        """The helper delivers for ``timeout``, stores the rest and exits; the events left, or None."""
        try:
            return self._close(timeout)
        finally:
            self._closed = True

    def _close(self, timeout: float) -> Optional[int]:
        deadline = time.monotonic() + timeout
        while self._overflow and time.monotonic() < deadline and not self._gone.is_set():
            time.sleep(PUMP_S)
        self._closing = True  # from here on an exit of the helper is the expected one
        self._stop_respawn.set()
        # The helper's own close takes what is left of the deadline; past it
        # (plus a margin), this returns whatever state the helper is in. What
        # a dead or late helper did not commit stays in the ring, which the
        # next Client on the spool recovers.
        left_s = max(0.0, deadline - time.monotonic())
        reply = self._ask(R.CONTROL, {"op": "close", "timeout": left_s}, left_s + CLOSE_MARGIN_S)
        proc = self.proc
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: a helper that did not get the close exits when it sees it
            except OSError:
                pass
            try:
                proc.wait(max(0.05, deadline + CLOSE_MARGIN_S - time.monotonic()))
            except subprocess.TimeoutExpired:
                # Its stdout stays open: closing it would wait for the reader
                # thread's read, which only the helper's exit ends.
                self._log.warning(
                    "zoe-local: close(): the delivery helper (pid %d) did not finish within the deadline; "
                    "it exits on its own, and what it did not store is recovered from the ring by the next start",
                    proc.pid,
                )
                return None
            self._reader.join(0.5)
            if not self._reader.is_alive():
                _close_pipes(proc)
        if reply is None or reply.get("left") is None:
            return None
        self.ring.close()
        if reply.get("ring_left") == 0 and not self._overflow:
            self._remove_ring()
        return int(reply["left"])

    def forget_after_fork(self) -> None:
        """In a forked child: closes the child's copies of the helper's stdin
        and of the ring's lock. The helper takes EOF on its stdin as the bot's
        death, and a recovering helper a free ring lock as the ring's owner's:
        a child that kept them would keep both from seeing the bot die."""
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        self._ring_lock.release()

    def count_left(self) -> int:
        """Events not delivered, counted without the helper (it did not answer
        close()): what is in the ring, plus the spool's rows read from the file."""
        left = self.in_ring()
        if self.spool_path == ":memory:":
            return left
        try:
            import sqlite3

            db = sqlite3.connect(f"file:{self.spool_path}?mode=ro", uri=True, timeout=0.2)
            try:
                left += db.execute("SELECT count(*) FROM spool").fetchone()[0]
            finally:
                db.close()
        except Exception:
            pass  # no spool yet, or locked: the ring is what is known
        return left

    def _remove_ring(self) -> None:
        for path in (self.ring_path, self.ring_path + ".lock"):
            try:
                os.unlink(path)
            except OSError:
                pass
        self._ring_lock.release()
