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

_M62 = (1 << 62) - 1
_VARIANT = 0x2 << 62  # 0b10, above the 62 random bits of the 4th and 5th groups

# (millisecond, "tttttttt-tttt-7") of the last id, one tuple for the same
# reason as _second below: a thread never pairs one ms with another's text.
_ms: Tuple[int, str] = (-1, "")


def uuid7(unix_ns: Optional[int] = None) -> str:
    """A lower-case UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, then 74 random bits."""
    global _ms
    ms = (time.time_ns() if unix_ns is None else unix_ns) // 1_000_000
    cached = _ms
    if cached[0] != ms:
        h = "%012x" % (ms & 0xFFFFFFFFFFFF)
        cached = (ms, h[:8] + "-" + h[8:] + "-7")
        _ms = cached
    x = _bits(74)  # 12 bits rand_a, then 62 bits rand_b behind the variant
    r = "%019x" % (((x >> 62) << 64) | _VARIANT | (x & _M62))
    return cached[1] + r[:3] + "-" + r[3:7] + "-" + r[7:]


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
