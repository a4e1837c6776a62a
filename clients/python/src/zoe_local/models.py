"""Typed shapes of what the client returns and reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional, TypedDict

Mode = Literal["paper", "live"]
Severity = Literal["debug", "info", "warn", "error", "critical"]

MODES = ("paper", "live")
SEVERITIES = ("debug", "info", "warn", "error", "critical")
#: Subtypes the service counts as critical (its ZOE_FLUSH_CRITICAL_SUBTYPES default).
CRITICAL_SUBTYPES = frozenset(
    ["BUY_FILLED", "SELL_FILLED", "PNL_REALIZED", "TRADING_HALTED", "KILL_SWITCH", "RECONCILIATION_MISMATCH"]
)


class StoredEvent(TypedDict):
    """An event as the service serves it (``events()``, ``follow()``)."""

    id: str
    mode: Mode
    ts: str
    seq: int
    source: str
    type: str
    subtype: str
    symbol: Optional[str]
    severity: Severity
    body: str
    meta: Dict[str, Any]
    idempotency_key: str


class StateAck(TypedDict):
    """Answer of ``POST /local/state``."""

    mode: Mode
    ts: str
    last_seq: int


class State(TypedDict, total=False):
    """``GET /local/state``: the newest snapshot's fields plus these."""

    mode: Mode
    cash: Any
    holdings: Any
    positions: Any
    state_ts: Optional[str]
    last_seq: int
    health: Dict[str, Any]


@dataclass(frozen=True)
class DeadLetter:
    """An event the service refused for good, kept in the spool's dead-letter table."""

    id: int
    event: Dict[str, Any]
    status: int
    code: str
    message: str
    details: Any
    dead_at: str


@dataclass(frozen=True)
class Dropped:
    """An event ``emit()`` did not queue because the spool or the queue was full."""

    id: str
    mode: str
    type: str
    subtype: str
    reason: Literal["spool_full", "queue_full"]


@dataclass(frozen=True)
class DeliveryProblem:
    """Why events are waiting: reported once per change, not per retry.

    ``kind``: ``unreachable`` (connection, timeout, 5xx), ``refused`` (429/503,
    waits for Retry-After), ``rejected`` (401/403/404/415 and other answers that
    are about the client's configuration, not one event: events stay spooled),
    ``spool`` (the spool file cannot be written), ``recovered`` (delivering again).
    """

    kind: Literal["unreachable", "refused", "rejected", "spool", "recovered"]
    message: str
    status: Optional[int] = None
    code: Optional[str] = None
    retry_in: Optional[float] = None


@dataclass(frozen=True)
class ResetEvent:
    """``follow()``'s position is beyond the newest stored seq (see :class:`StreamReset`)."""

    position: int
    newest_seq: int


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's health, from ``Client.stats()``."""

    #: Emitted, not yet written to the spool (a few milliseconds' worth).
    queued: int
    #: In the spool, not yet acknowledged by the service.
    spooled: int
    spooled_bytes: int
    #: Rows in the dead-letter table (all runs of this spool).
    dead_letters: int
    #: Acknowledged by the service since this client started (duplicates included):
    #: events and queued ``post_state()`` snapshots.
    delivered: int
    #: Requests the service acknowledged (delivered / batches = events per request).
    batches: int
    #: Of those, answered ``duplicate: true`` (sent before, e.g. across a restart).
    duplicates: int
    #: Refused by ``emit()`` under the when-full policy since this client started.
    dropped: int
    #: Requests that failed and will be retried.
    retries: int
    #: ``ok``, or the kind of the current :class:`DeliveryProblem`.
    status: str
    last_error: Optional[str]
    #: Wall-clock seconds (``time.time()``) of the last error and last acknowledgement.
    last_error_at: Optional[float]
    last_delivery_at: Optional[float]
    #: Seconds until the sender tries again (0 when it is not waiting).
    retry_in: float
    #: Of ``delivered``, ``post_state()`` snapshots (not ``wait=True`` ones: their answer is the call's).
    states_delivered: int = 0


__all__ = [
    "CRITICAL_SUBTYPES",
    "ClientStats",
    "DeadLetter",
    "DeliveryProblem",
    "Dropped",
    "MODES",
    "Mode",
    "ResetEvent",
    "SEVERITIES",
    "Severity",
    "State",
    "StateAck",
    "StoredEvent",
]
