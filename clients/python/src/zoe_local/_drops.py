"""``Drops``: what happens to an event refused under the when-full policy.

Counted, logged at most every 10 s (a full spool refuses thousands a second),
and passed to ``on_drop``. The bot's process refuses for a full queue (in
``emit()``), the pipeline for a full spool; both count through one of these.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from .models import Dropped

LOG_EVERY_S = 10.0


class Drops:
    def __init__(self, on_drop: Optional[Callable[[Dropped], None]], logger: logging.Logger) -> None:
        self._on_drop = on_drop
        self._log = logger
        self._lock = threading.Lock()
        self._last_log = -LOG_EVERY_S
        self.count = 0

    def __call__(self, dropped: Dropped) -> None:
        with self._lock:
            self.count += 1
            count = self.count
            now = time.monotonic()
            log = now - self._last_log >= LOG_EVERY_S
            if log:
                self._last_log = now
        if log:
            self._log.warning(
                "zoe-local: %s: dropped event %s (%s/%s), %d dropped so far; critical events are still queued",
                dropped.reason,
                dropped.id,
                dropped.type,
                dropped.subtype,
                count,
            )
        if self._on_drop is not None:
            try:
                self._on_drop(dropped)
            except Exception:
                self._log.exception("zoe-local: on_drop callback failed")
