"""The delivery helper: a child process of the bot that runs the Pipeline
(spool writer and sender, _pipeline.py), fed through the emit ring (_ring.py).

Why a process: in the bot's interpreter those two threads take the GIL from
the trading loop every few milliseconds, and each hand-off stalls an
``emit()`` (its p99 was 21–46 µs that way). Here they have a GIL of their
own, at a lower CPU priority than the bot (``nice``).

Channels (_link.py is the other end):
* the ring: events, durable events and controls (flush, state, requeue,
  stats, dead letters, close), in emit order, so a reply covers every event
  emitted before the request;
* stdin: the Settings (first line, JSON, with the ring's path: the token never shows in ``ps``), then
  doorbell bytes (the helper sleeps while the ring is idle); EOF means the bot
  is gone, and the helper then delivers for ``exit_timeout`` and exits;
* stdout: JSON lines: ``ready``, replies (``re``), log records and callbacks.

The ring's tail moves only once what was read from it is in the spool, so a
helper that dies loses nothing: the next one reads from the tail again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import sys
import threading
import time
from collections import deque
from typing import Any, BinaryIO, Deque, Dict, Optional, Tuple

from . import _ring as R
from ._pipeline import Pipeline
from ._spool import SpoolBusy, lock_holder, pid_alive, remove_spool_files, side_spool_path
from .errors import SpoolError
from .models import Dropped
from .settings import Settings

TAKE_RECORDS = 4096
TAKE_BYTES = 4 << 20
# Woken by an ordinary event, or after taking some, the helper lets more
# gather for LINGER_S (Kafka's linger.ms) before it takes: one spool commit,
# one request and one service commit then carry all of them (at 100 events/s
# about two; alone, each cost the chain more CPU than the seed's in-process
# SQLite commit). A critical event, a durable one or a control rings the
# doorbell, which ends the linger at once. An event waits at most that long in
# the ring file (shared memory: it survives a crash of the bot or the helper).
LINGER_S = 0.02
# Longest sleep of an idle helper: bounds the delay when a doorbell is missed
# (the ring's flag and the bell are not atomic with the record, a window of
# nanoseconds); otherwise it sleeps until the bot rings.
IDLE_WAIT_S = 0.25
LOCK_WAIT_S = 3.0
SAME_BOT_WAIT_S = 0.5


class Out:
    """stdout, one JSON line per message, from any thread."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def send(self, message: Dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                self.broken = True  # the bot is gone; its notices with it


class NoticeHandler(logging.Handler):
    def __init__(self, out: Out) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.out.send({"log": record.levelno, "msg": self.format(record)})
        except Exception:
            self.handleError(record)


def _dropped_of(payload: bytes, reason: str) -> Dropped:
    try:
        e = json.loads(payload)
        return Dropped(e.get("id", "?"), e.get("mode", "?"), e.get("type", "?"), e.get("subtype", "?"), reason)  # type: ignore[arg-type]
    except ValueError:
        return Dropped("?", "?", "?", "?", reason)  # type: ignore[arg-type]


class Feed:
    """Moves ring records into the pipeline; publishes the ring's tail behind the spool."""

    def __init__(
        self, consumer: R.RingConsumer, pipeline: Pipeline, out: Out, critical_subtypes: frozenset, queue_max: int
    ) -> None:
        self.ring = consumer
        self.pipeline = pipeline
        self.queue_max = queue_max
        self.out = out
        self.critical = critical_subtypes
        self.appended = pipeline.writer.committed  # events put on the pipeline's queue, ever
        self.checkpoints: Deque[Tuple[int, int, int]] = deque()  # (appended, ring position, records read)
        self.orphaned = threading.Event()  # stdin closed, or reparented: the bot is gone
        self.bot = os.getppid()
        self.closing: Optional[Dict[str, Any]] = None

    def run(self) -> None:
        """Takes what the ring holds, hands it to the spool writer in one go,
        lingers while events flow and sleeps until the doorbell when none do:
        no wake-up on a clock (an idle helper polling every millisecond cost
        more CPU than the events did at 100 a second)."""
        while self.closing is None:
            if len(self.pipeline.queue) >= self.queue_max:
                # Backpressure: the ring fills and emit() drops, where the bot
                # hears of it at once, instead of this process dropping what
                # the bot was told is queued.
                self.publish()
                self.wait(LINGER_S)
                if self.orphaned.is_set():
                    return
                continue
            records = self.ring.take(TAKE_RECORDS, TAKE_BYTES)
            urgent = False
            for kind, body in records:
                if kind != R.EVENT:
                    urgent = True
                self._record(kind, body)
            if records and not self.pipeline.writer.ingest(timeout=0):
                # Committed here, in this thread, when it can: waking the
                # writer thread for it cost a thread switch and a GIL hand-off
                # per batch. A commit in progress or a failed one waiting for its
                # retry is the writer thread's.
                self.pipeline.kick()
            self.checkpoints.append((self.appended, self.ring.cursor, self.ring.read))
            self.publish()
            if self.orphaned.is_set() and not records:
                return
            if urgent:
                continue
            if records:
                self.wait(LINGER_S)
                continue
            self.ring.set_sleeping(True)
            if not self.ring.ready():
                self.wait(IDLE_WAIT_S)
            self.ring.set_sleeping(False)
            if self.ring.ready():
                # The first event of a batch: let the next ones join it (a
                # bell now can only be an urgent record, which ends the wait).
                self.wait(LINGER_S)

    def wait(self, timeout: float) -> None:
        """Until a doorbell byte on stdin (the bot rings for every ordered record,
        and for events while this sleeps), EOF (the bot is gone) or ``timeout``.

        The bot's death is also read from this process being reparented: a
        child the bot forked without the at-fork hook (a C library's fork())
        still holds the pipe's write end, but it is never this one's parent."""
        if os.getppid() != self.bot:
            self.orphaned.set()
            return
        try:
            ready, _, _ = select.select([0], [], [], timeout)
            if ready and not os.read(0, 4096):
                self.orphaned.set()
        except InterruptedError:
            pass
        except OSError:
            self.orphaned.set()

    def publish(self) -> None:
        """Moves the ring's tail up to the newest checkpoint the spool has stored."""
        committed = self.pipeline.writer.committed
        best = None
        cps = self.checkpoints
        while cps and cps[0][0] <= committed:
            best = cps.popleft()
        if best is not None:
            self.ring.commit(best[1], best[2])

    def _record(self, kind: int, body: bytes) -> None:
        p = self.pipeline
        if kind == R.CONTROL:
            self._control(json.loads(body))
            return
        durable = kind == R.DURABLE_EVENT or kind == R.DURABLE_CRITICAL_EVENT
        critical = kind == R.CRITICAL_EVENT or kind == R.DURABLE_CRITICAL_EVENT
        request, payload = (int.from_bytes(body[:8], "little"), body[8:]) if durable else (0, body)
        why = None
        if not critical and p.spool_full():
            p.drop(_dropped_of(payload, "spool_full"))  # as emit() does in-process, durable or not
        else:
            p.submit(payload, critical, wake=False)  # run() wakes the writer once per take
            self.appended += 1
            if durable:
                why = p.commit_now()
        if durable:
            self.out.send({"re": request, "ok": why is None, "error": why})

    def _control(self, c: Dict[str, Any]) -> None:
        p, op = self.pipeline, c["op"]
        if op == "state":
            p.post_state(c["mode"], c["body"].encode("utf-8"), c["gen"])
        elif op == "floor":

            def floor() -> Dict[str, Any]:
                p.state_floor(c["mode"], c["gen"], c["timeout"])
                return {"ok": True}

            self._answer_later(c["id"], floor)
        elif op == "flush":
            marker = p.marker()
            self._answer_later(c["id"], lambda: {"ok": marker is None or marker.done.wait(c["timeout"])})
        elif op == "requeue":
            request = p.start_requeue(c["ids"])
            self._answer_later(c["id"], lambda: {"ok": request.done.wait(c["timeout"]), "count": request.count})
        elif op == "stats":
            self.out.send({"re": c["id"], "stats": dataclasses.asdict(p.stats())})
        elif op == "dead_letters":
            self.out.send({"re": c["id"], "letters": [dataclasses.asdict(d) for d in p.dead_letters(c["limit"])]})
        elif op == "close":
            self.closing = c

    def _answer_later(self, request: int, answer: Any) -> None:
        threading.Thread(target=lambda: self.out.send({"re": request, **answer()}), daemon=True).start()

    def drain(self) -> None:
        """Takes what is left in the ring (the bot is gone or closing)."""
        while True:
            records = self.ring.take(TAKE_RECORDS, TAKE_BYTES)
            if not records:
                return
            for kind, body in records:
                if kind != R.CONTROL:
                    self._record(kind, body)
            self.checkpoints.append((self.appended, self.ring.cursor, self.ring.read))


def _open(settings: Settings, log: logging.Logger) -> Pipeline:
    # The feed wakes the writer (Feed.run): it never polls here.
    return Pipeline(settings, log, bot=os.getppid(), writer_linger=0.0)


def _open_waiting(settings: Settings, out: Out, log: logging.Logger) -> Pipeline:
    """Opens the pipeline. When the spool is held, what the holder wrote in
    the lock file says by whom:
    * by this very bot (a second Client in one process): refused after
      SAME_BOT_WAIT_S (a Client of it being closed lets go by then);
    * by another live bot (a forked worker's parent or sibling, or a Client
      per worker on one spool_path): this one spools to a side spool of its
      own at once (the pipeline's ``spool_path`` says which), which the Client on the
      main spool takes over once this process is gone;
    * by the helper of a bot that is gone (it stores its ring and lets go
      within moments): waited for, up to LOCK_WAIT_S, so that a restarted
      bot's events follow the ones its killed predecessor left."""
    deadline = time.monotonic() + LOCK_WAIT_S
    said = False
    while True:
        try:
            return _open(settings, log)
        except SpoolBusy as error:
            path: str = settings.spool_path  # type: ignore[assignment]
            holder = lock_holder(path)
            bot = os.getppid()
            if holder is not None and holder[1] == bot and pid_alive(holder[0]):
                # A Client of this process that is being closed lets go within moments.
                if time.monotonic() < deadline - LOCK_WAIT_S + SAME_BOT_WAIT_S:
                    time.sleep(0.05)
                    continue
                out.send({"error": f"{error}: by another open Client of this process (pid {bot})", "spool": True})
                sys.exit(3)
            if holder is not None and pid_alive(holder[1]):
                settings = dataclasses.replace(settings, spool_path=side_spool_path(path))
                log.info(
                    "zoe-local: spool %s is in use by bot pid %d; this Client (pid %d) spools to %s, which the "
                    "Client on %s takes over when this process is gone",
                    path,
                    holder[1],
                    bot,
                    settings.spool_path,
                    path,
                )
                continue
            if not said:
                said = True
                log.info(
                    "zoe-local: spool %s is still held by the helper (pid %s) of a bot that is gone; "
                    "waiting up to %.0f s for it to store that bot's last events",
                    path,
                    holder[0] if holder else "?",
                    LOCK_WAIT_S,
                )
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            out.send({"error": str(error), "spool": True})
        except SpoolError as error:
            out.send({"error": str(error), "spool": True})
        sys.exit(3)


def recover_orphans(spool_path: str, own_ring: str, feed: Feed) -> int:
    """Rings of bots that died with their helper: their records go to the spool
    first (they were emitted before anything in this bot's ring)."""
    from ._spool import _FileLock

    found = 0
    own = os.path.abspath(own_ring)
    orphans = []
    for folder, prefix in R.ring_places(spool_path):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name.startswith(prefix) and not name.endswith(".lock") and path != own:
                try:
                    orphans.append((os.stat(path).st_mtime, path))
                except OSError:
                    pass  # gone meanwhile
    for _, path in sorted(orphans):  # the oldest bot's first
        try:
            lock = _FileLock(path + ".lock")
        except (BlockingIOError, OSError):
            continue  # its bot is alive
        try:
            consumer = R.RingConsumer(path)
            orphan = Feed(consumer, feed.pipeline, feed.out, feed.critical, feed.queue_max)
            orphan.drain()
            stored = feed.pipeline.commit_now() is None
            found += consumer.read - consumer.consumed if stored else 0
            consumer.close()
            if not stored:
                continue  # the spool cannot take them now; the next start reads the ring again
            os.unlink(path)
        except (OSError, ValueError):
            continue
        finally:
            lock.release()
        try:
            os.unlink(path + ".lock")
        except OSError:
            pass
    return found


def _config_line() -> bytes:
    """The first line of stdin, read unbuffered so that nothing after it is held in a buffer."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        data += chunk
    return data


def main() -> None:
    """Runs until closed or orphaned; ends the process with os._exit: daemon
    threads (flush answers) must not hold up or abort the interpreter's shutdown."""
    try:
        _run()
    except SystemExit as exit:
        _flush()
        os._exit(exit.code if isinstance(exit.code, int) else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        _flush()
        os._exit(1)
    _flush()
    os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # the bot is gone


def _run() -> None:
    out = Out(sys.stdout.buffer)
    start = json.loads(_config_line())
    ring = start["ring"]

    def notify(hook: str) -> Any:
        kind = hook[3:]  # on_drop: {"drop": ...}, as _link.py dispatches it
        return lambda value: out.send({kind: dataclasses.asdict(value)})

    settings = Settings.from_json(start["settings"], notify)
    log = logging.getLogger("zoe_local.helper")
    log.propagate = False
    log.setLevel(start["log_level"])
    log.addHandler(NoticeHandler(out))
    if settings.helper_nice:
        try:
            os.nice(settings.helper_nice)
        except (AttributeError, OSError):
            pass
    main_spool = settings.spool_path
    pipeline = _open_waiting(settings, out, log)
    spool_path = pipeline.spool_path
    feed = Feed(R.RingConsumer(ring), pipeline, out, settings.critical_subtypes, settings.queue_max)
    if pipeline.spool.durable:
        recovered = recover_orphans(spool_path, ring, feed)
        if recovered:
            log.warning(
                "zoe-local: recovered %d events from the emit ring of a bot that exited without closing", recovered
            )
    out.send({"ready": True, "pid": os.getpid(), "spool_path": spool_path})
    feed.run()
    closing = feed.closing
    feed.drain()
    # Orphaned (the bot was killed): store the ring and let go of the spool at
    # once, so that the restarted bot's helper can take it over.
    left = pipeline.close(closing["timeout"] if closing else 0.0)
    if left == 0 and spool_path != main_spool:
        remove_spool_files(spool_path)  # an empty side spool: nothing for anyone to take over
    if left is not None:
        feed.publish()
    out.send({"re": closing["id"] if closing else None, "left": left, "ring_left": feed.ring.read - feed.ring.consumed})
    feed.ring.close()
    if closing is None and left is not None and feed.ring.read == feed.ring.consumed:
        # The bot is gone and nothing is left in its ring: nobody else removes it.
        for path in (ring, ring + ".lock"):
            try:
                os.unlink(path)
            except OSError:
                pass


if __name__ == "__main__":
    main()
