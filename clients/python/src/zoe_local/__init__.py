"""Python client for zoe-local, the bot box's local event store.

    from zoe_local import Client

    zoe = Client("http://127.0.0.1:8765", mode="live", spool_path="/var/lib/bot/zoe-spool.db")
    zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", symbol="AAPL", meta={"qty": 10, "price": 187.5})

Standard library only; Python 3.9+. See README.md in this package.
"""

from __future__ import annotations

from .client import Client
from .errors import (
    ClientClosed,
    InvalidEvent,
    ServiceError,
    ServiceUnreachable,
    SpoolError,
    StreamReset,
    ZoeError,
)
from .ids import rfc3339, uuid7
from .models import (
    CRITICAL_SUBTYPES,
    ClientStats,
    DeadLetter,
    DeliveryProblem,
    Dropped,
    Mode,
    ResetEvent,
    Severity,
    State,
    StateAck,
    StoredEvent,
)
from .settings import DEFAULT_URL, Settings, default_spool_path
from .stream import AsyncEventStream, EventStream

__version__ = "0.1.0"

__all__ = [
    "AsyncEventStream",
    "CRITICAL_SUBTYPES",
    "Client",
    "ClientClosed",
    "ClientStats",
    "DEFAULT_URL",
    "DeadLetter",
    "DeliveryProblem",
    "Dropped",
    "EventStream",
    "InvalidEvent",
    "Mode",
    "ResetEvent",
    "ServiceError",
    "ServiceUnreachable",
    "Settings",
    "Severity",
    "SpoolError",
    "State",
    "StateAck",
    "StoredEvent",
    "StreamReset",
    "ZoeError",
    "default_spool_path",
    "rfc3339",
    "uuid7",
]
