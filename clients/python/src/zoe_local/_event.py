"""Checks an event against the service's schema and encodes it, in ``emit()``.

The checks mirror the service's (supabase/functions/_shared/event-schema.ts
and src/http/body.ts), so an event ``emit()`` accepts is one the service
stores: a bad field raises :class:`InvalidEvent` in the caller's thread rather
than becoming a dead letter later. The event is encoded to JSON here too,
which freezes it (a ``meta`` dict the bot mutates afterwards does not change
what is sent) and is what the spool stores.

Budget: about 5 µs for a typical event. Hence the C string escaper and one
reused C encoder for ``meta`` instead of ``json.dumps`` (which builds a new
encoder per call), and length checks that encode only long strings.
"""

from __future__ import annotations

import json
import json.encoder as _je
import math
import re
import time
from datetime import datetime
from typing import Any, Callable, Dict, FrozenSet, Optional, Tuple, Union

from ._values import MAX_JSON_DEPTH, MAX_SAFE_INTEGER, Values, naive_as_aware, pointer, too_deep
from .errors import InvalidEvent
from .ids import rfc3339, uuid7
from .models import MODES, SEVERITIES

MAX_BODY_BYTES = 65_536
# Epoch seconds a ts may be: 0001-01-01 up to, not including, 10000-01-01.
_EPOCH_MIN, _EPOCH_END = -62_135_596_800, 253_402_300_800
_SEEN_MAX = 4096

_ISO_8601 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$")
_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f][0-9a-f]{2}", re.IGNORECASE)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_escape: Callable[[str], str] = _je.c_encode_basestring or _je.py_encode_basestring  # type: ignore[attr-defined]


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def make_json_encoder() -> Callable[[Any], str]:
    c_make = getattr(_je, "c_make_encoder", None)
    if c_make is None:  # not CPython: the pure-Python encoder, same output
        enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_not_json)
        return enc.encode
    # No circular-reference markers: a shared markers dict keeps stale ids after
    # an error, and a cycle still ends in RecursionError. allow_nan=False.
    c_enc = c_make(None, _not_json, _escape, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(c_enc(value, 0))

    return encode


def is_iso_timestamp(value: str) -> bool:
    """The service's ``isIsoTimestamp``: RFC 3339 with an offset, a real date, offset ≤ ±15:59."""
    m = _ISO_8601.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year < 1 or not 1 <= month <= 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > _DAYS[month - 1] + (1 if month == 2 and leap else 0):
        return False
    if m.group(8) != "Z" and (int(m.group(9)) > 15 or int(m.group(10)) > 59):
        return False
    return True


def _utf16_units(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def check_text(value: Any, field: str, max_units: int) -> str:
    """A non-empty string of at most ``max_units`` UTF-16 code units (JS length), without NUL."""
    if not isinstance(value, str):
        raise InvalidEvent(f"Cannot emit event: {field[1:]} must be a string, got {type(value).__name__}", field)
    n = len(value)
    if n == 0:
        raise InvalidEvent(f"Cannot emit event: {field[1:]} must not be empty", field)
    if n * 2 > max_units and (n > max_units or _utf16_units(value) > max_units):
        raise InvalidEvent(f"Cannot emit event: {field[1:]} is longer than {max_units} characters", field)
    if "\x00" in value:
        raise InvalidEvent(f"Cannot emit event: {field[1:]} contains a NUL character", field)
    return value


def check_ts(value: Union[str, datetime, float], naive_ts: str = "refuse") -> str:
    """``ts`` as the service's RFC 3339: a string as given, an aware datetime
    (a naive one by ``naive_ts``), or Unix epoch seconds (int or float, UTC)."""
    if isinstance(value, datetime):
        value = naive_as_aware(value, naive_ts, "Cannot emit event", "/ts").isoformat()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and _EPOCH_MIN <= value < _EPOCH_END):
            raise InvalidEvent(
                f"Cannot emit event: ts = {value!r} is not Unix epoch seconds from year 1 to 9999 "
                "(milliseconds? divide by 1000)",
                "/ts",
            )
        return rfc3339(round(value * 1_000_000) * 1000)
    if not isinstance(value, str) or not is_iso_timestamp(value):
        raise InvalidEvent(
            f"Cannot emit event: ts must be ISO 8601 with an offset, e.g. 2026-03-02T09:30:00.5-05:00, got {value!r}",
            "/ts",
        )
    return value


def check_json_value(value: Any, what: str, path: str, depth: int) -> None:
    """What the C encoder passes but the service would not store faithfully in a
    container of plain values: integers past ±2^53 (JavaScript numbers; they
    would be stored rounded) and nesting past the service's limit."""
    if depth >= MAX_JSON_DEPTH:
        raise too_deep(what, path)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, v in items:
        t = type(v)
        if t is str or t is bool or t is float or v is None:
            continue
        if isinstance(v, int):  # int subclasses (IntEnum) are encoded as numbers too
            if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                continue
            raise InvalidEvent(
                f"{what}: {pointer(path, key)[1:]} = {v} is beyond ±2^53 and would be rounded; send it as a string",
                pointer(path, key),
            )
        if t is dict or t is list or t is tuple or isinstance(v, (dict, list, tuple)):
            check_json_value(v, what, pointer(path, key), depth + 1)


def encode_json(value: Any, encoder: Callable[[Any], str], values: Values, what: str, path: str, depth: int) -> str:
    """``value`` (a dict) as compact JSON, or :class:`InvalidEvent` naming the
    first value that is not JSON. The C encoder goes first; only when it fails
    does ``values`` walk the value, to convert it or to say what failed."""
    try:
        text = encoder(value)
    except (TypeError, ValueError, RecursionError):
        plain = values.plain(value, what, path, depth)
        try:
            return encoder(plain)
        except (TypeError, ValueError, RecursionError) as error:  # pragma: no cover - plain() checked it all
            raise InvalidEvent(f"{what}: {path[1:] or 'it'} is not JSON: {error}", path) from error
    # A flat dict of plain values (the usual case) is checked here in one pass;
    # anything else (containers, int subclasses, ...) gets the full walk.
    for v in value.values():
        t = type(v)
        if t is str or t is float or t is bool or v is None:
            continue
        if t is int and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
            continue
        check_json_value(value, what, path, depth)
        break
    return text


def check_body(body: Any) -> None:
    if not isinstance(body, str):
        raise InvalidEvent(f"Cannot emit event: body must be a string, got {body.__class__.__name__}", "/body")
    if not body:
        raise InvalidEvent("Cannot emit event: body must not be empty", "/body")
    if len(body) * 3 > MAX_BODY_BYTES and len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise InvalidEvent(f"Cannot emit event: body is longer than {MAX_BODY_BYTES} bytes of UTF-8", "/body")
    if "\x00" in body:
        raise InvalidEvent("Cannot emit event: body contains a NUL character", "/body")


_TEMPLATE = (
    '{"id":"%s","idempotency_key":%s,"mode":"%s","ts":"%s","source":%s,"type":%s,'
    '"subtype":%s,"symbol":%s,"severity":"%s","body":%s,"meta":%s}'
)


class EventEncoder:
    """Validates and encodes events for one client (its defaults and limits)."""

    def __init__(
        self,
        mode: Optional[str],
        source: str,
        critical_subtypes: FrozenSet[str],
        max_request_bytes: int,
        values: Optional[Values] = None,
    ) -> None:
        if mode is not None and mode not in MODES:
            raise InvalidEvent(f"mode must be one of {', '.join(MODES)}, got {mode!r}", "/mode")
        self.mode = mode
        self.source_json = _escape(check_text(source, "/source", 128))
        self.critical_subtypes = critical_subtypes
        self.max_request_bytes = max_request_bytes
        self._meta = make_json_encoder()
        self.values = values or Values()
        # A bot repeats its types, subtypes and symbols: each distinct string
        # is checked and escaped once (plain str only, so a str subclass with
        # its own __eq__ cannot stand in for a checked value).
        self._seen: Dict[str, str] = {}
        self._symbols: Dict[str, str] = {}

    @staticmethod
    def _first_time(cache: Dict[str, str], value: Any, field: str, max_units: int) -> str:
        """A string not in ``cache`` yet: checked, escaped, and remembered when it is a plain str."""
        text = _escape(check_text(value, field, max_units))
        if type(value) is str:
            if len(cache) >= _SEEN_MAX:
                cache.clear()  # a bot that never repeats itself: bounded, not an LRU
            cache[value] = text
        return text

    def encode(
        self,
        etype: str,
        subtype: str,
        body: str,
        symbol: Optional[str],
        severity: str,
        meta: Optional[Dict[str, Any]],
        source: Optional[str],
        mode: Optional[str],
        ts: Union[str, datetime, float, None],
        idempotency_key: Optional[str],
    ) -> Tuple[bytes, str, str, bool]:
        """(payload JSON, id, mode, critical) or :class:`InvalidEvent`."""
        if mode is None:
            mode = self.mode
            if mode is None:
                raise InvalidEvent(
                    "Cannot emit event: no mode; pass mode='paper' or 'live' here or to Client()", "/mode"
                )
        elif mode not in MODES:
            raise InvalidEvent(f"Cannot emit event: mode must be one of {', '.join(MODES)}, got {mode!r}", "/mode")
        if severity not in SEVERITIES:
            raise InvalidEvent(
                f"Cannot emit event: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}", "/severity"
            )
        # The lookups stay inline (a call each would cost more than they save).
        seen = self._seen
        type_json = seen.get(etype) if type(etype) is str else None
        if type_json is None:
            type_json = self._first_time(seen, etype, "/type", 128)
        subtype_json = seen.get(subtype) if type(subtype) is str else None
        if subtype_json is None:
            subtype_json = self._first_time(seen, subtype, "/subtype", 128)
        check_body(body)
        source_json = self.source_json if source is None else _escape(check_text(source, "/source", 128))
        if symbol is None:
            symbol_json = "null"
        else:
            symbol_json = self._symbols.get(symbol) if type(symbol) is str else None
            if symbol_json is None:
                symbol_json = self._first_time(self._symbols, symbol, "/symbol", 64)
        meta_json = "{}" if meta is None else self._encode_meta(meta)
        now = time.time_ns()
        ts_text = rfc3339(now) if ts is None else check_ts(ts, self.values.naive_ts)
        event_id = uuid7(now)
        key_json = (
            f'"{event_id}"'
            if idempotency_key is None
            else _escape(check_text(idempotency_key, "/idempotency_key", 256))
        )
        text = _TEMPLATE % (
            event_id,
            key_json,
            mode,
            ts_text,
            source_json,
            type_json,
            subtype_json,
            symbol_json,
            severity,
            _escape(body),
            meta_json,
        )
        try:
            payload = text.encode("utf-8")
        except UnicodeEncodeError as error:
            named = {
                "/type": etype,
                "/subtype": subtype,
                "/body": body,
                "/symbol": symbol,
                "/source": source,
                "/idempotency_key": idempotency_key,
                "/meta": meta_json,
            }
            field = next((f for f, v in named.items() if isinstance(v, str) and not _encodable(v)), "")
            raise InvalidEvent(
                f"Cannot emit event: {field[1:] or 'a field'} holds a lone surrogate (not valid Unicode)", field
            ) from error
        if len(payload) + 2 > self.max_request_bytes:
            raise InvalidEvent(
                f"Cannot emit event: it is {len(payload)} bytes as JSON, over the service's request limit of "
                f"{self.max_request_bytes} bytes (ZOE_MAX_REQUEST_BYTES; see Client(max_request_bytes=))",
                "",
            )
        critical = severity == "critical" or subtype in self.critical_subtypes
        return payload, event_id, mode, critical

    def encode_state(self, state: Dict[str, Any]) -> bytes:
        """A state snapshot's request body, by the same rules and settings as ``meta``."""
        what = "Cannot post state"
        text = encode_json(state, self._meta, self.values, what, "", 0)
        if "\\" in text:
            if "\\u0000" in text:
                raise InvalidEvent(f"{what}: the snapshot contains a NUL character")
            if _SURROGATE_ESCAPE.search(text):
                raise InvalidEvent(f"{what}: the snapshot holds a lone surrogate (not valid Unicode)")
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidEvent(f"{what}: the snapshot holds a lone surrogate (not valid Unicode)") from error

    def is_critical(self, payload: bytes) -> bool:
        """Whether an encoded event (a dead letter being requeued) is critical."""
        return payload_is_critical(payload, self.critical_subtypes)

    def _encode_meta(self, meta: Any) -> str:
        if not isinstance(meta, dict):
            raise InvalidEvent(f"Cannot emit event: meta must be a dict, got {meta.__class__.__name__}", "/meta")
        if not meta:
            return "{}"
        # The C encoder inline (the hot path); encode_json() when it refuses or the
        # values need the full walk. The request array is depth 0, the event 1, meta 2.
        try:
            text = self._meta(meta)
        except (TypeError, ValueError, RecursionError):
            text = encode_json(meta, self._meta, self.values, "Cannot emit event", "/meta", 2)
        else:
            for v in meta.values():
                t = type(v)
                if t is str or t is float or t is bool or v is None:
                    continue
                if t is int and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                    continue
                check_json_value(meta, "Cannot emit event", "/meta", 2)
                break
        if "\\" in text:
            # The service checks the JSON text of meta, so a literal "\u0000" is refused too.
            if "\\u0000" in text:
                raise InvalidEvent("Cannot emit event: meta contains a NUL character", "/meta")
            if _SURROGATE_ESCAPE.search(text):
                raise InvalidEvent("Cannot emit event: meta holds a lone surrogate (not valid Unicode)", "/meta")
        return text


def payload_is_critical(payload: bytes, critical_subtypes: FrozenSet[str]) -> bool:
    try:
        e = json.loads(payload)
        return e.get("severity") == "critical" or e.get("subtype") in critical_subtypes
    except ValueError:
        return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
