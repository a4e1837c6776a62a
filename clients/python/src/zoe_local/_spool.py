"""The durable spool: a SQLite file (WAL) holding every event from shortly after
``emit()`` until the service acknowledged it, plus the dead-letter table.

Rows carry an explicit ``seq`` in emit order; the sender sends them in that
order with the payload (and so the id and idempotency key) they were given at
``emit()``. One process at a time: an OS lock on ``<path>.lock`` (released by
the kernel when the process dies, so a crash never leaves it behind) stops a
second client from sending the same rows.

Appends commit with ``synchronous`` (FULL by default: on the disk before the
commit returns, so a spooled event survives a power loss). Removals after an
acknowledgement commit with NORMAL: losing one to a power cut only means the
event is sent again, and the service answers that resend as a duplicate.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .errors import SpoolError
from .models import DeadLetter

#: What emit() queues and the spool stores: (payload JSON, critical, len(payload)).
Item = Tuple[bytes, bool, int]

_SCHEMA = """
-- AUTOINCREMENT: a seq is never given twice, even after the spool ran empty.
CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  payload BLOB NOT NULL,
  critical INTEGER NOT NULL,
  size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_critical ON spool (seq) WHERE critical = 1;
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY,
  payload BLOB NOT NULL,
  status INTEGER NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  details TEXT NOT NULL,
  dead_at TEXT NOT NULL
);
"""
SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")

# Rows per INSERT statement. Each statement is one sqlite3_step, and the
# sqlite3 module lets go of the GIL around every step: executemany() of N rows
# is N hand-offs, and while the bot's thread is busy each hand-off waits for
# the GIL's switch interval and then interrupts emit() (a 400-row append took
# 75 ms instead of 2 with executemany, 11 ms this way). SQLite before 3.32
# allows 999 bound parameters a statement, later versions 32766.
_CHUNK = 4096 if sqlite3.sqlite_version_info >= (3, 32, 0) else 256


def _pieces(n: int) -> List[int]:
    """Rows per statement for an append of ``n``: powers of two of at most _CHUNK
    (400: 256 + 128 + 16), so a handful of cached statements serves every size."""
    out = []
    while n > 0:
        rows = min(_CHUNK, 1 << (n.bit_length() - 1))
        out.append(rows)
        n -= rows
    return out


@lru_cache(maxsize=None)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO spool (payload, critical, size) VALUES " + ",".join(("(?,?,?)",) * rows)


class SpoolBusy(SpoolError):
    """Another process holds the spool's lock."""


def side_spool_path(spool_path: str) -> str:
    """A spool of this process's own next to ``spool_path`` (held by another
    live bot: a forked worker's parent or sibling). The Client on the main
    spool takes it over once its process is gone (adopt_side_spools)."""
    import secrets

    return f"{spool_path}.worker-{os.getpid()}-{secrets.token_hex(4)}.db"


def side_spools(spool_path: str) -> List[str]:
    folder, base = os.path.split(os.path.abspath(spool_path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    prefix = base + ".worker-"
    return sorted(os.path.join(folder, n) for n in names if n.startswith(prefix) and n.endswith(".db"))


def remove_spool_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def lock_holder(spool_path: str) -> Optional[Tuple[int, int]]:
    """(pid holding the lock, pid of its bot) as the holder wrote them, or None."""
    try:
        with open(spool_path + ".lock") as f:
            holder, bot = f.read().split()[:2]
        return int(holder), int(bot)
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """A live process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class _FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows
            import msvcrt

            try:
                msvcrt.locking(self.fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            except OSError:
                os.close(self.fd)
                raise BlockingIOError(path) from None
        except OSError:
            os.close(self.fd)
            raise BlockingIOError(path) from None

    def release(self) -> None:
        """Drops the lock (closing the descriptor does); idempotent. In a forked
        child it drops only the child's reference: the lock lives on while the
        parent holds it."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class Spool:
    """Thread-safe (one lock around one connection); the sender thread is its main user."""

    def __init__(self, path: str, synchronous: str = "FULL", bot: Optional[int] = None) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"spool_synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
        self.path = path
        self.durable = path != ":memory:"
        self._lock = threading.Lock()
        self._file_lock: Optional[_FileLock] = None
        if self.durable:
            folder = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(folder, exist_ok=True)
                self._file_lock = _FileLock(path + ".lock")
                # Who holds it, for the next Client that finds it held: is its bot alive?
                os.ftruncate(self._file_lock.fd, 0)
                os.pwrite(self._file_lock.fd, f"{os.getpid()} {bot or os.getpid()}\n".encode(), 0)
            except BlockingIOError:
                raise SpoolBusy(
                    f"Cannot open spool {path}: another process (or Client) is using it (lock {path}.lock is held); "
                    "give each Client its own spool_path"
                ) from None
            except OSError as error:
                raise SpoolError(f"Cannot open spool {path}: {error}") from error
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
            # Removals after an acknowledgement commit at NORMAL on a connection
            # of their own: one autocommit DELETE instead of a PRAGMA dance of
            # five statements (five GIL hand-offs). ":memory:" has one database
            # per connection, so it keeps the one.
            self._removals = self._db
            if self.durable:
                self._removals = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
                self._removals.execute("PRAGMA synchronous=NORMAL")
            self.events, self.bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool"
            ).fetchone()
            self.next_seq = self._db.execute(
                "SELECT max(coalesce((SELECT max(seq) FROM spool), 0), coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'spool'), 0)) + 1"
            ).fetchone()[0]
            self.dead = self._db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        except sqlite3.Error as error:
            self._release_file_lock()
            raise SpoolError(f"Cannot open spool {path}: {error}") from error
        self._sync = synchronous

    # -- the sender's side ---------------------------------------------------

    def append(self, items: Sequence[Item]) -> int:
        """Stores ``items`` in one transaction; they get consecutive seqs from the returned one."""
        with self._lock:
            if len(_pieces(len(items))) == 1:
                first = self._insert(items)  # one statement is its own transaction
            else:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    first = self._insert(items)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            self._added(items)
            return first

    def _insert(self, items: Sequence[Item]) -> int:
        first = self.next_seq
        i, last = 0, 0
        for rows in _pieces(len(items)):
            cur = self._db.execute(_insert_sql(rows), list(chain.from_iterable(items[i : i + rows])))
            last = cur.lastrowid or 0
            i += rows
        if last != first + len(items) - 1:  # only this process writes: cannot happen
            raise SpoolError(f"spool {self.path}: seqs {first}..{last} for {len(items)} rows")
        return first

    def _added(self, items: Sequence[Item]) -> None:
        self.next_seq += len(items)
        self.events += len(items)
        self.bytes += sum(map(itemgetter(2), items))

    def head(self, after_seq: int, limit: int) -> Tuple[List[int], List[Item]]:
        """Up to ``limit`` rows with seq > ``after_seq``, in seq order: (seqs, items)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload, critical, size FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [r[0] for r in rows], [(bytes(r[1]), bool(r[2]), r[3]) for r in rows]

    def critical(self, limit: int) -> Tuple[List[int], List[Item]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload, critical, size FROM spool WHERE critical = 1 ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in rows], [(bytes(r[1]), True, r[3]) for r in rows]

    def remove(self, seqs: Sequence[int], nbytes: int) -> None:
        """Deletes acknowledged rows (a lost removal only causes a resend the service dedupes)."""
        if not seqs:
            return
        with self._lock:
            first, last = seqs[0], seqs[-1]
            db = self._removals
            if last - first + 1 == len(seqs):
                db.execute("DELETE FROM spool WHERE seq BETWEEN ? AND ?", (first, last))
            else:
                db.execute(f"DELETE FROM spool WHERE seq IN ({','.join(map(str, seqs))})")  # ints only
            self.events -= len(seqs)
            self.bytes -= nbytes

    def bury(
        self, rows: Sequence[Tuple[int, bytes]], status: int, code: str, message: str, details: Any
    ) -> List[DeadLetter]:
        """Moves (seq, payload) rows into the dead-letter table with the service's verdict, in one transaction."""
        dead_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        details_json = json.dumps(details, ensure_ascii=False, default=str)
        out: List[DeadLetter] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for seq, payload in rows:
                    cur = self._db.execute(
                        "INSERT INTO dead_letters (payload, status, code, message, details, dead_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (payload, status, code, message, details_json, dead_at),
                    )
                    self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,))
                    out.append(
                        DeadLetter(int(cur.lastrowid or 0), _loads(payload), status, code, message, details, dead_at)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self.events -= len(rows)
            self.bytes -= sum(len(p) for _, p in rows)
            self.dead += len(rows)
        return out

    # -- the caller's side -----------------------------------------------------

    def dead_letters(self, limit: int) -> List[DeadLetter]:
        with self._lock:
            cur = self._db.execute(
                "SELECT id, payload, status, code, message, details, dead_at FROM dead_letters ORDER BY id LIMIT ?",
                (limit,),
            )
            return [DeadLetter(i, _loads(p), s, c, m, json.loads(d), t) for i, p, s, c, m, d, t in cur.fetchall()]

    def requeue(self, ids: Optional[Sequence[int]], critical_of: Callable[[bytes], bool]) -> Tuple[int, List[Item]]:
        """Moves dead letters back to the end of the spool: (first seq, items)."""
        with self._lock:
            if ids is None:
                rows = self._db.execute("SELECT id, payload FROM dead_letters ORDER BY id").fetchall()
            elif ids:
                marks = ",".join("?" * len(ids))
                sql = f"SELECT id, payload FROM dead_letters WHERE id IN ({marks}) ORDER BY id"
                rows = self._db.execute(sql, list(ids)).fetchall()
            else:
                rows = []
            if not rows:
                return self.next_seq, []
            items = [(bytes(p), bool(critical_of(bytes(p))), len(p)) for _, p in rows]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                first = self._insert(items)
                self._db.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i, _ in rows])
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._added(items)
            self.dead -= len(rows)
            return first, items

    def adopt(self, path: str) -> Optional[Tuple[int, List[Item]]]:
        """Moves the rows and dead letters of the side spool at ``path`` (its
        process gone) to the end of this one, then removes its files; the
        events moved as (first seq, items), or None when its owner still holds it. The two
        commits are not atomic together: a crash between them only sends the
        moved events twice, which the service answers as duplicates."""
        try:
            lock = _FileLock(path + ".lock")
        except (BlockingIOError, OSError):
            return None
        try:
            with self._lock:
                side = sqlite3.connect(path, isolation_level=None, timeout=1.0)
                try:
                    side.executescript(_SCHEMA)
                    rows = side.execute("SELECT payload, critical, size FROM spool ORDER BY seq").fetchall()
                    dead = side.execute(
                        "SELECT payload, status, code, message, details, dead_at FROM dead_letters ORDER BY id"
                    ).fetchall()
                    items = [(bytes(p), bool(c), n) for p, c, n in rows]
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        first = self._insert(items) if items else self.next_seq
                        self._db.executemany(
                            "INSERT INTO dead_letters (payload, status, code, message, details, dead_at) VALUES (?, ?, ?, ?, ?, ?)",
                            dead,
                        )
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                    self._added(items)
                    self.dead += len(dead)
                    side.execute("DELETE FROM spool")
                    side.execute("DELETE FROM dead_letters")
                finally:
                    side.close()
            remove_spool_files(path)
            return first, items
        finally:
            lock.release()
            try:
                os.unlink(path + ".lock")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        with self._lock:
            try:
                if self._removals is not self._db:
                    self._removals.close()
                self._db.close()
            finally:
                self._release_file_lock()

    # -- internals -------------------------------------------------------------

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the child's copy of the lock, so that
        the child living on never keeps the spool from the parent's successor."""
        self._release_file_lock()

    def _release_file_lock(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None


def _loads(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return {"raw": payload.decode("utf-8", "replace")}
