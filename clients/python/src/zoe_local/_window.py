"""The sender's in-memory copy of the spool's unsent rows, oldest first.

Batches are cut from it without reading SQLite back. It holds at most
MAX_ROWS rows / MAX_BYTES bytes; past that, newer rows stay on disk only and
are paged in as the window drains (``complete`` is then False). Batch cutting
runs in C (islice, accumulate, bisect, join) because the sender holds the GIL
while it cuts, and every microsecond it holds it is one emit() may wait.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from itertools import accumulate, islice, repeat
from operator import add, itemgetter
from typing import Deque, List, Sequence, Set, Tuple

from ._spool import Item, Spool

MAX_ROWS = 50_000
MAX_BYTES = 64 * 1024 * 1024
PAGE_ROWS = 5_000

_payload = itemgetter(0)
_size = itemgetter(2)


class Window:
    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.seqs: Deque[int] = deque()
        self.items: Deque[Item] = deque()
        self.bytes = 0
        self.last = 0  # highest seq ever loaded
        self.complete = False  # False: rows past `last` may be on disk only

    def __len__(self) -> int:
        return len(self.seqs)

    def appended(self, first: int, items: Sequence[Item]) -> None:
        """Rows just committed to the spool with seqs first, first+1, ..."""
        if not self.complete:
            return  # paged in from disk after the older rows
        if len(self.seqs) + len(items) > MAX_ROWS or self.bytes >= MAX_BYTES:
            self.complete = False
            return
        self.seqs.extend(range(first, first + len(items)))
        self.items.extend(items)
        self.bytes += sum(map(_size, items))
        self.last = first + len(items) - 1

    def has_unsent(self) -> bool:
        if self.seqs:
            return True
        if self.complete:
            return False
        seqs, items = self.spool.head(self.last, PAGE_ROWS)
        self.seqs.extend(seqs)
        self.items.extend(items)
        self.bytes += sum(map(_size, items))
        if seqs:
            self.last = seqs[-1]
        if len(seqs) < PAGE_ROWS:
            self.complete = True
        return bool(seqs)

    def lowest(self) -> float:
        """The lowest unsent seq (inf when nothing is unsent)."""
        if self.seqs:
            return self.seqs[0]
        return float("inf") if self.complete else self.last + 1

    def cut(self, limit: int, max_body: int) -> Tuple[int, int]:
        """How many head rows fit one request body of ``max_body`` bytes: (rows, payload bytes)."""
        return cut(self.items, limit, max_body)

    def head(self, n: int) -> Tuple[List[int], List[Item]]:
        return list(islice(self.seqs, n)), list(islice(self.items, n))

    def pop(self, n: int, nbytes: int) -> None:
        popseq, popitem = self.seqs.popleft, self.items.popleft
        for _ in repeat(None, n):
            popseq()
            popitem()
        self.bytes -= nbytes

    def discard(self, seqs: Set[int]) -> None:
        """Drops rows that left the spool out of order (dead letters, critical lane)."""
        kept = [(q, it) for q, it in zip(self.seqs, self.items) if q not in seqs]
        self.seqs = deque(q for q, _ in kept)
        self.items = deque(it for _, it in kept)
        self.bytes = sum(it[2] for _, it in kept)


def cut(items: Sequence[Item], limit: int, max_body: int) -> Tuple[int, int]:
    """(k, payload bytes) of the longest head of ``items`` (at least one) whose
    JSON array ``[a,b,...]`` is at most ``max_body`` bytes and k ≤ limit."""
    # wire[i] = payload bytes + separators of the first i+1 rows (each counted with its comma)
    wire = list(accumulate(map(add, map(_size, islice(items, limit)), repeat(1))))
    if not wire:
        return 0, 0
    k = max(1, bisect_right(wire, max_body - 1))  # [ + rows + commas - 1 + ]
    return k, wire[k - 1] - k


def body(items: Sequence[Item]) -> bytes:
    return b"[" + b",".join(map(_payload, items)) + b"]"
