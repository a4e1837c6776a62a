"""The emit ring: a file-backed shared-memory ring from the bot's process (one
producer, ``emit()``) to the delivery helper process (one consumer, _helper.py).

Why shared memory: ``emit()`` must cost the bot's thread no syscall, no lock
another process can hold and no GIL hand-off. A pipe write takes the kernel's
pipe lock, which the reader holds while it copies out a big read (emit() p99
of 40–80 µs in a prototype); threads in the bot's interpreter take the GIL.
Writing into a mapped file is a memcpy.

Layout: a 4096-byte header, then ``capacity`` bytes of records. Positions are
byte offsets that only grow; a record at position p sits at ``p % capacity``.
A record is an 8-byte head ``<len | kind << 24 : u32, check : u32>`` then
``len`` bytes, padded to 8. A record that would cross the end is preceded by a
skip head and starts again at offset 0.

Ordering without atomics (the standard library has none): the producer writes
the body, then the head; ``check`` is a CRC-32 of the body seeded with the
record's position, so a head the consumer reads before its body is complete,
or a stale head from an earlier lap, fails the check and reads as "nothing
yet" (capacity / 8 is odd, so the seeds of one offset repeat only every
2**29 laps). The header's tail is an aligned 8-byte word written and read with one
memcpy (one store / load on x86-64 and arm64).

The file lives in /dev/shm where there is one (else next to the spool), named
after the spool (ring_places()): records survive a crash of both processes
(tmpfs or the page cache holds them, not a reboot) and the next helper on that
spool recovers them from the published tail. The producer touches every page
when it makes the ring: a first write to a page is a page fault (5–50 µs),
which on a fresh 32 MiB ring hit 3–6% of emit() calls. tmpfs pages then stay
mapped and writable; a disk file's would be write-protected again by every
writeback. Duplicates that recovery may add (records spooled but
not yet marked consumed) are answered by the service as duplicates.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import struct
import tempfile
import zlib
from typing import List, Optional, Tuple

MAGIC = b"ZOERING1"
HEADER = 4096
# Header words: capacity at 8; the consumer's tail (bytes) at 64, its count of
# consumed events at 72; its sleeping flag (1: ring the doorbell) at 128 and
# the number of its current sleep at 136 (written before the flag), so the
# producer rings once per sleep, however short the wake in between was.
_CAPACITY, _TAIL, _CONSUMED, _SLEEPING, _SLEEP = 8, 64, 72, 128, 136
_HEAD = struct.Struct("<II")
# pack_into writes the head byte by byte, which is fine: a head read half
# written fails its check like one not written at all.
_pack_head = _HEAD.pack_into
_crc32 = zlib.crc32
_WORD = struct.Struct("<Q")
_SKIP = 0xFFFFFFFF
_MASK = 0xFFFFFFFF
MAX_RECORD = (1 << 24) - 1

#: Record kinds (the head's top byte).
EVENT, CRITICAL_EVENT, DURABLE_EVENT, DURABLE_CRITICAL_EVENT, CONTROL = 1, 2, 3, 4, 5


SHM = "/dev/shm"


def ring_places(spool_path: str) -> List[Tuple[str, str]]:
    """Where the rings of the spool at ``spool_path`` are, as (folder, name
    prefix), the one new rings go to first."""
    spool = os.path.abspath(spool_path)
    places = []
    if os.path.isdir(SHM) and os.access(SHM, os.W_OK):
        places.append((SHM, f"zoe-local-{hashlib.sha256(spool.encode()).hexdigest()[:16]}.ring-"))
    folder, base = os.path.split(spool)
    places.append((folder, base + ".ring-"))
    return places


def new_ring_path(spool_path: Optional[str]) -> str:
    """A fresh ring name for this process; ``None``: a spool in memory (nothing to recover)."""
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    if spool_path is None:
        folder = SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else tempfile.gettempdir()
        return os.path.join(folder, f"zoe-local-memory.ring-{tag}")
    folder, prefix = ring_places(spool_path)[0]
    return os.path.join(folder, prefix + tag)


def ring_capacity(requested: int) -> int:
    """``requested`` rounded to a multiple of 8 whose eighth is odd (see the module doc)."""
    units = max(64, requested // 8)
    return 8 * (units if units % 2 else units - 1)


def _pad(n: int) -> int:
    return (n + 7) & ~7


class _Mapped:
    def __init__(self, path: str, fd: int, size: int) -> None:
        self.path = path
        self._fd = fd
        self.mm = mmap.mmap(fd, size)
        self.capacity = _WORD.unpack(self.mm[_CAPACITY : _CAPACITY + 8])[0]

    def word(self, at: int) -> int:
        return _WORD.unpack(self.mm[at : at + 8])[0]  # type: ignore[no-any-return]

    def set_word(self, at: int, value: int) -> None:
        self.mm[at : at + 8] = _WORD.pack(value)

    def close(self) -> None:
        try:
            self.mm.close()
        finally:
            os.close(self._fd)


class RingProducer(_Mapped):
    """The bot's side. Not thread-safe: the caller holds a lock, or has one thread."""

    def __init__(self, path: str, capacity: int) -> None:
        capacity = ring_capacity(capacity)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, HEADER + capacity)
            os.write(fd, MAGIC + _WORD.pack(capacity))
        except OSError:
            os.close(fd)
            raise
        super().__init__(path, fd, HEADER + capacity)
        self.limit = min(MAX_RECORD, (capacity // 2 - 8) & ~7)
        mm = self.mm
        mm[0] = mm[0]
        for off in range(HEADER, HEADER + capacity, mmap.PAGESIZE):
            mm[off] = 0
        self.head = 0  # next free position
        self.written = 0  # events put (controls are not counted)
        self._tail = 0  # cached consumer tail
        self.consumed = 0  # cached consumer count

    def refresh(self) -> None:
        """Reads what the consumer published."""
        self._tail = self.word(_TAIL)
        self.consumed = self.word(_CONSUMED)

    @property
    def consumer_sleeping(self) -> bool:
        return self.mm[_SLEEPING] == 1

    def consumer_sleep(self) -> int:
        """The number of the consumer's current (or latest) sleep."""
        return self.word(_SLEEP)

    def put(self, kind: int, body: bytes) -> bool:
        """Appends one record; False when the ring has no room for it now."""
        n = len(body)
        if not 0 < n <= self.limit:
            raise ValueError(
                f"Cannot put a record of {n} bytes in the emit ring: a record holds 1 to {self.limit} bytes"
            )
        cap = self.capacity
        pos = self.head
        off = pos % cap
        size = 8 + ((n + 7) & ~7)
        if off + size > cap:
            return self._put_after_skip(kind, body, size)
        if pos + size - self._tail > cap:
            self._tail = self.word(_TAIL)
            if pos + size - self._tail > cap:
                return False
        at = HEADER + off
        mm = self.mm
        mm[at + 8 : at + 8 + n] = body
        _pack_head(mm, at, n | kind << 24, _crc32(body, pos & _MASK))
        self.head = pos + size
        if kind != CONTROL:
            self.written += 1
        return True

    def _put_after_skip(self, kind: int, body: bytes, size: int) -> bool:
        """The record would cross the end: a skip head, then the record at offset 0."""
        cap, pos = self.capacity, self.head
        off = pos % cap
        if pos + (cap - off) + size - self._tail > cap:
            self._tail = self.word(_TAIL)
            if pos + (cap - off) + size - self._tail > cap:
                return False
        _pack_head(self.mm, HEADER + off, _SKIP, pos & _MASK)
        self.head = pos + cap - off
        return self.put(kind, body)

    def unlink(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class RingConsumer(_Mapped):
    """The helper's side: reads from ``cursor``; ``commit()`` publishes up to where it read."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            head = os.read(fd, 16)
            if head[:8] != MAGIC:
                raise ValueError(f"Cannot open emit ring {path}: not a zoe-local ring file")
            size = HEADER + _WORD.unpack(head[8:16])[0]
            if os.fstat(fd).st_size < size:
                raise ValueError(f"Cannot open emit ring {path}: the file is shorter than its header says (truncated)")
        except (OSError, ValueError):
            os.close(fd)
            raise
        super().__init__(path, fd, size)
        self.tail = self.word(_TAIL)
        self.consumed = self.word(_CONSUMED)
        self.cursor = self.tail
        self.read = self.consumed  # events read, ever (controls are not counted)

    def take(self, max_records: int, max_bytes: int) -> List[Tuple[int, bytes]]:
        """Complete records from the cursor on, as (kind, body), oldest first."""
        out: List[Tuple[int, bytes]] = []
        mm, cap = self.mm, self.capacity
        pos = self.cursor
        nbytes = 0
        while len(out) < max_records and nbytes < max_bytes:
            off = pos % cap
            at = HEADER + off
            word, check = _HEAD.unpack(mm[at : at + 8])
            if word == _SKIP:
                if check != pos & _MASK:
                    break
                pos += cap - off
                continue
            n = word & MAX_RECORD
            if n == 0 or off + 8 + n > cap:
                break
            body = mm[at + 8 : at + 8 + n]
            if zlib.crc32(body, pos & _MASK) != check:
                break
            kind = word >> 24
            out.append((kind, body))
            pos += 8 + _pad(n)
            nbytes += n
            if kind != CONTROL:
                self.read += 1
        self.cursor = pos
        return out

    def ready(self) -> bool:
        """Whether a complete record waits at the cursor."""
        cursor, read = self.cursor, self.read
        found = bool(self.take(1, 1))
        self.cursor, self.read = cursor, read
        return found

    def commit(self, position: int, events: int) -> None:
        """What was taken up to ``position`` (``events`` read in all by then) is
        stored: the producer may reuse its room. Not above the cursor."""
        if position <= self.tail:
            return
        self.consumed = events
        self.set_word(_CONSUMED, events)
        self.tail = position
        self.set_word(_TAIL, position)

    def set_sleeping(self, sleeping: bool) -> None:
        if sleeping:
            self.set_word(_SLEEP, self.word(_SLEEP) + 1)  # a new sleep: worth one doorbell
        self.mm[_SLEEPING] = 1 if sleeping else 0
