"""Event ids and timestamps, stamped in ``emit()``'s thread at call time.

Both are on the hot path, so they avoid ``uuid`` and ``datetime`` (about 3 µs
between them); the formats are the ones the service's schema accepts.
"""

from __future__ import annotations

import os
import random
import time
from typing import Optional, Tuple

# Random bits from a private generator seeded by the OS, reseeded in a forked
# child: os.urandom costs a syscall per id (about 1 µs), and the global
# `random` would repeat ids after a bot's random.seed(42). A repeated id is a
# repeated idempotency key: the service would answer "duplicate" and drop it.
_rng = random.Random(os.urandom(32))
_bits = _rng.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))

_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_SET = (0x7 << 76) | (0x2 << 62)  # version 7, variant 0b10


def uuid7(unix_ns: Optional[int] = None) -> str:
    """A lower-case UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then 74 random bits."""
    ms = (time.time_ns() if unix_ns is None else unix_ns) // 1_000_000
    h = "%032x" % ((((ms & 0xFFFFFFFFFFFF) << 80) | _bits(80)) & _KEEP | _SET)
    return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]


# (second, "YYYY-MM-DDTHH:MM:SS") of the last stamp: one tuple, so a thread
# never reads one second's number with another second's text.
_second: Tuple[int, str] = (-1, "")


def rfc3339(unix_ns: Optional[int] = None) -> str:
    """UTC time as ``2026-03-02T14:30:00.123456Z`` (RFC 3339, offset ``Z``)."""
    global _second
    ns = time.time_ns() if unix_ns is None else unix_ns
    s, rest = divmod(ns, 1_000_000_000)
    cached = _second
    if cached[0] != s:
        cached = (s, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)))
        _second = cached
    return f"{cached[1]}.{rest // 1000:06d}Z"
