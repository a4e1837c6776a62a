"""What may go into ``meta`` and a state snapshot, and the opt-in conversion of
the values bot frameworks hand out (numpy, pandas, datetime, Decimal).

The default contract is strict: a value JSON cannot carry faithfully raises
:class:`InvalidEvent` naming it by JSON pointer, with one wording for
``emit()`` and ``post_state()``. ``Values`` is consulted only after the fast C
encoder failed, so plain ``meta`` never pays for it; numpy and pandas are
recognised by duck typing (``.item()``/``.tolist()`` with a ``dtype``,
``.to_pydatetime()``), never imported.
"""

from __future__ import annotations

import enum
import math
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Callable, Optional, Tuple

from .errors import InvalidEvent

MAX_SAFE_INTEGER = 2**53 - 1
MAX_JSON_DEPTH = 64  # src/http/body.ts: containers nested this deep are refused
NON_FINITE = ("refuse", "null")
NAIVE_TS = ("refuse", "utc", "local")
_HINT = "Client(convert=True) converts numpy, pandas, datetime and Decimal values; json_default= converts others"
_MISSING_TYPES = frozenset(["NaTType", "NAType"])  # pandas' NaT and NA: missing values, like NaN


def type_name(value: Any) -> str:
    """``numpy.int64``, ``pandas.Timestamp``, ``decimal.Decimal``; builtins by their bare name."""
    t = type(value)
    module = (t.__module__ or "").split(".")[0]
    return t.__qualname__ if module in ("builtins", "") else f"{module}.{t.__qualname__}"


def too_deep(what: str, path: str) -> InvalidEvent:
    """Nesting past the service's limit; the pointer once, cut in the middle when long (``field`` has it whole)."""
    head, tail = path[:24], path[-16:]
    at = path if len(path) <= 48 else f"{head[: head.rfind('/')]}…{tail[tail.find('/') :]}"
    subject = "meta" if path.startswith("/meta") else "the snapshot"
    return InvalidEvent(f"{what}: {subject} is nested more than {MAX_JSON_DEPTH} levels deep at {at}", path)


def pointer(path: str, key: Any) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def naive_as_aware(value: datetime, naive_ts: str, what: str, field: str) -> datetime:
    """A datetime with an offset, by the ``naive_ts`` policy for one without."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    if naive_ts == "utc":
        return value.replace(tzinfo=timezone.utc)
    if naive_ts == "local":
        return value.astimezone()
    raise InvalidEvent(
        f"{what}: {field[1:] or 'the value'} is a naive datetime; give it a timezone (e.g. timezone.utc) "
        'or set Client(naive_ts="utc")',
        field,
    )


class _Unconverted(Exception):
    pass


class Values:
    """The conversion settings of one client (see Client's ``convert``, ``json_default``, ``non_finite``, ``naive_ts``)."""

    def __init__(
        self,
        convert: bool = False,
        json_default: Optional[Callable[[Any], Any]] = None,
        non_finite: str = "refuse",
        naive_ts: str = "refuse",
    ) -> None:
        if non_finite not in NON_FINITE:
            raise ValueError(f"non_finite must be one of {', '.join(NON_FINITE)}, got {non_finite!r}")
        if naive_ts not in NAIVE_TS:
            raise ValueError(f"naive_ts must be one of {', '.join(NAIVE_TS)}, got {naive_ts!r}")
        if json_default is not None and not callable(json_default):
            raise ValueError(f"json_default must be a callable, got {json_default!r}")
        self.convert = bool(convert)
        self.json_default = json_default
        self.non_finite = non_finite
        self.naive_ts = naive_ts

    def plain(self, value: Any, what: str, path: str, depth: int) -> Any:
        """``value`` as plain JSON values (dict, list, str, int, float, bool, None),
        converted by the settings, or :class:`InvalidEvent` naming what cannot be.
        ``depth`` counts the containers around ``value`` in the request body."""
        for _ in range(8):  # a json_default that returns what it was given must not loop forever
            t = type(value)
            if t is str or t is bool or value is None:
                return value
            if isinstance(value, bool):
                return bool(value)
            if isinstance(value, int):  # int subclasses (IntEnum) are encoded as numbers too
                if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                    return value
                raise InvalidEvent(
                    f"{what}: {path[1:]} = {value} is beyond ±2^53 and would be rounded; send it as a string", path
                )
            if isinstance(value, float):
                if math.isfinite(value):
                    return value
                return self._missing(value, what, path)
            if isinstance(value, str):
                return value
            if isinstance(value, dict):
                self._deeper(what, path, depth)
                return {
                    self._key(k, what, path): self.plain(v, what, pointer(path, k), depth + 1) for k, v in value.items()
                }
            if isinstance(value, (list, tuple)):
                self._deeper(what, path, depth)
                return [self.plain(v, what, pointer(path, i), depth + 1) for i, v in enumerate(value)]
            if type(value).__name__ in _MISSING_TYPES:
                return self._missing(value, what, path)
            try:
                value = self._convert(value, what, path)
            except _Unconverted:
                raise InvalidEvent(
                    f"{what}: {path[1:]} is a {type_name(value)}, not a JSON value ({_HINT})", path
                ) from None
        raise InvalidEvent(
            f"{what}: {path[1:]} did not convert to a JSON value (json_default= keeps returning objects)", path
        )

    def _deeper(self, what: str, path: str, depth: int) -> None:
        if depth >= MAX_JSON_DEPTH:
            raise too_deep(what, path)

    def _missing(self, value: Any, what: str, path: str) -> None:
        if self.non_finite == "null":
            return None
        raise InvalidEvent(
            f'{what}: {path[1:]} is {value}, which JSON cannot carry (Client(non_finite="null") sends null)', path
        )

    def _key(self, key: Any, what: str, path: str) -> str:
        if type(key) is str:
            return key
        plain = self.plain(key, what, pointer(path, key), MAX_JSON_DEPTH)  # a key is never a container
        if isinstance(plain, str):
            return plain
        if plain is None or isinstance(plain, bool):
            return "null" if plain is None else ("true" if plain else "false")
        return float.__repr__(plain) if isinstance(plain, float) else int.__repr__(plain)

    def _convert(self, value: Any, what: str, path: str) -> Any:
        """One step of conversion: the user's hook first (TypeError: not its type), then the built-ins."""
        if self.json_default is not None:
            try:
                return self.json_default(value)
            except TypeError:
                pass
            except Exception as error:
                raise InvalidEvent(
                    f"{what}: json_default failed on {path[1:]} ({type_name(value)}): {error}", path
                ) from error
        if not self.convert:
            raise _Unconverted
        ok, converted = self._builtin(value, what, path)
        if not ok:
            raise _Unconverted
        return converted

    def _builtin(self, value: Any, what: str, path: str) -> Tuple[bool, Any]:
        if isinstance(value, datetime):  # pandas.Timestamp is one
            return True, naive_as_aware(value, self.naive_ts, what, path).isoformat()
        if isinstance(value, (date, time)):
            return True, value.isoformat()
        if isinstance(value, Decimal):
            # A string keeps every digit: the service reads JSON numbers as float64.
            return True, format(value, "f") if value.is_finite() else self._missing(value, what, path)
        if isinstance(value, enum.Enum):
            return True, value.value
        dtype = getattr(value, "dtype", None)
        if dtype is not None:  # numpy scalars and arrays, pandas Series
            if getattr(dtype, "kind", "") == "M":  # numpy.datetime64: .item() of ns is an int
                if getattr(value, "ndim", 0) == 0 and value != value:
                    return True, self._missing(value, what, path)  # NaT
                value = value.astype("datetime64[us]")
            if getattr(value, "ndim", 0) == 0 and callable(getattr(value, "item", None)):
                return True, value.item()
            if callable(getattr(value, "tolist", None)):
                return True, value.tolist()
        to_pydatetime = getattr(value, "to_pydatetime", None)
        if callable(to_pydatetime):
            return True, to_pydatetime()
        return False, None
