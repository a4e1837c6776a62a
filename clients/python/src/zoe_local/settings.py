"""``Settings``: everything a Client is configured with, validated in one place.

``Client(url, token, mode, **options)`` builds one from its arguments;
``Client(settings=Settings(...))`` takes one whole (keyword arguments next to
it override its fields). The delivery helper gets the same object: its JSON
form (``to_json()``) is the first line of the helper's stdin.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional

from ._event import check_text
from ._spool import SYNCHRONOUS
from ._transport import BaseUrl
from ._values import Values
from .errors import InvalidEvent
from .models import CRITICAL_SUBTYPES, MODES, DeadLetter, DeliveryProblem, Dropped

DEFAULT_URL = "http://127.0.0.1:8765"
MiB = 1024 * 1024
DELIVERY = ("process", "thread")
OVERFLOW = ("drop", "block")
# Fields that stay in the bot's process: callables, and what only emit() uses.
# The helper learns which hooks are set (it forwards their calls to the bot).
HOOKS = ("on_dead_letter", "on_drop", "on_problem")
_LOCAL = (*HOOKS, "logger", "json_default")


def default_spool_path(mode: Optional[str]) -> str:
    """``$XDG_STATE_HOME/zoe-local/spool-<mode>.db`` (``~/.local/state`` without XDG_STATE_HOME)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "zoe-local", f"spool-{mode or 'all'}.db")


def _positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")


def _one_of(name: str, value: Any, allowed: Iterable[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class Settings:
    """A Client's configuration (the README's "Options" table). Frozen; a bad
    value raises ValueError naming the field when the Settings is made."""

    url: str = DEFAULT_URL
    token: Optional[str] = field(default=None, repr=False)
    mode: Optional[str] = None
    source: str = "bot"
    #: None (or empty): :func:`default_spool_path` of ``mode``, chosen by the Client.
    spool_path: Optional[str] = None
    spool_max_bytes: int = 256 * MiB
    spool_synchronous: str = "FULL"
    queue_max: int = 100_000
    max_batch: int = 1000
    max_request_bytes: int = 1_048_576
    timeout: float = 10.0
    backoff_base: float = 0.05
    backoff_max: float = 5.0
    max_retry_after: float = 300.0
    #: Any iterable of subtypes; kept as a frozenset.
    critical_subtypes: FrozenSet[str] = frozenset(CRITICAL_SUBTYPES)
    durable_timeout: float = 5.0
    exit_timeout: Optional[float] = 5.0
    on_dead_letter: Optional[Callable[[DeadLetter], None]] = None
    on_drop: Optional[Callable[[Dropped], None]] = None
    on_problem: Optional[Callable[[DeliveryProblem], None]] = None
    logger: Optional[logging.Logger] = None
    delivery: str = "process"
    ring_bytes: int = 32 * MiB
    helper_nice: int = 10
    overflow: str = "drop"
    block_timeout: float = 1.0
    convert: bool = False
    json_default: Optional[Callable[[Any], Any]] = None
    non_finite: str = "refuse"
    naive_ts: str = "refuse"

    def __post_init__(self) -> None:
        BaseUrl(self.url)
        Values(self.convert, self.json_default, self.non_finite, self.naive_ts)
        token = self.token
        if token is not None and (not isinstance(token, str) or not token or "\n" in token):
            raise ValueError("token must be a non-empty string (ZOE_API_TOKEN of the service)")
        for name in ("timeout", "backoff_base", "backoff_max", "max_retry_after", "durable_timeout", "block_timeout"):
            _positive(name, getattr(self, name))
            self._set(name, float(getattr(self, name)))
        for name in ("spool_max_bytes", "queue_max", "max_request_bytes", "ring_bytes"):
            _positive(name, getattr(self, name), integer=True)
        if not isinstance(self.max_batch, int) or isinstance(self.max_batch, bool) or not 1 <= self.max_batch <= 1000:
            raise ValueError(
                f"max_batch must be an integer from 1 to 1000 (the service's cap per request), got {self.max_batch!r}"
            )
        if self.exit_timeout is not None:
            _positive("exit_timeout", self.exit_timeout)
        _one_of("delivery", self.delivery, DELIVERY)
        _one_of("overflow", self.overflow, OVERFLOW)
        _one_of("spool_synchronous", self.spool_synchronous, SYNCHRONOUS)
        if self.mode is not None and self.mode not in MODES:
            raise InvalidEvent(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}", "/mode")
        check_text(self.source, "/source", 128)
        if not isinstance(self.helper_nice, int) or isinstance(self.helper_nice, bool):
            raise ValueError(f"helper_nice must be an integer (a nice increment), got {self.helper_nice!r}")
        if isinstance(self.critical_subtypes, str) or not all(isinstance(s, str) for s in self.critical_subtypes):
            raise ValueError(f"critical_subtypes must be strings (event subtypes), got {self.critical_subtypes!r}")
        self._set("critical_subtypes", frozenset(self.critical_subtypes))
        for name in HOOKS:
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise ValueError(f"{name} must be a callable, got {hook!r}")
        if self.spool_path is not None and not isinstance(self.spool_path, str):
            raise ValueError(f"spool_path must be a path (str), got {self.spool_path!r}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen dataclass's field while it is made

    def to_json(self) -> Dict[str, Any]:
        """What the delivery helper needs: the data fields, and which hooks are set."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _LOCAL}
        out["critical_subtypes"] = sorted(self.critical_subtypes)
        out["hooks"] = [name for name in HOOKS if getattr(self, name) is not None]
        return out

    @classmethod
    def from_json(cls, data: Dict[str, Any], hook: Callable[[str], Callable[[Any], None]]) -> "Settings":
        """``to_json()``'s Settings, with each hook that was set replaced by ``hook(name)``."""
        fields = {k: v for k, v in data.items() if k != "hooks"}
        return cls(**fields, **{name: hook(name) for name in data["hooks"]})
