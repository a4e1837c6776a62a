"""What a failed delivery means, and how long to wait before the next one."""

from __future__ import annotations

import random
import re
from typing import Any, Optional, Set

from .errors import ServiceError

# Codes that are a verdict on the events of the request: the `verdict` column of
# supabase/functions/_shared/error-codes.ts (tests/test_failures.py holds them equal).
_EVENT_CODES = {"invalid_request", "malformed_json", "conflict", "idempotency_conflict", "payload_too_large"}
_POINTER = re.compile(r"^/(\d+)(?:/|$)")


def is_verdict(err: ServiceError) -> bool:
    """The service refused these events for good (they would be refused again)."""
    return err.status == 413 or (err.status in (400, 409, 422) and err.code in _EVENT_CODES)


def refuses_ordinary_only(err: ServiceError) -> bool:
    """A 503 backlog_full/disk_low for ordinary events: critical ones still have room."""
    return err.status == 503 and isinstance(err.details, dict) and err.details.get("critical") is False


def kind(status: int) -> str:
    """``refused`` (wait for Retry-After), ``unreachable`` (transient), ``rejected`` (configuration)."""
    if status in (429, 503):
        return "refused"
    if status >= 500 or status in (408, 425):
        return "unreachable"
    return "rejected"


def named_indices(details: Any, n: int) -> Set[int]:
    """Indices of the batch that the error's JSON pointers name (``/3/meta`` → 3).

    Empty when any detail is about the request rather than one event: then the
    batch is halved instead.
    """
    out: Set[int] = set()
    if not isinstance(details, list):
        return out
    for d in details:
        path = d.get("path") if isinstance(d, dict) else None
        m = _POINTER.match(path) if isinstance(path, str) else None
        if m is None or int(m.group(1)) >= n:
            return set()
        out.add(int(m.group(1)))
    return out


class Backoff:
    """Capped full jitter: the n-th wait is uniform in [0, min(cap, base·2^n)]."""

    def __init__(self, base: float, cap: float, max_retry_after: float) -> None:
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after
        self.failures = 0
        self._rng = random.Random()

    def next(self, retry_after: Optional[float] = None) -> float:
        """The wait after one more failure; the service's Retry-After wins (up to max_retry_after)."""
        n = self.failures
        self.failures += 1
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self._rng.uniform(0.0, min(self.cap, self.base * (2 ** min(n, 30))))

    def reset(self) -> None:
        self.failures = 0
