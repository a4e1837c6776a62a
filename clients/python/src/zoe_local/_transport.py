"""HTTP/1.1 to the service (_wire.py): one keep-alive connection per Transport,
the bearer token on every request, and an ``abort()`` another thread may call
to cut a request short (``close()``'s deadline)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from ._wire import Connection, interrupt
from .errors import ServiceError, ServiceUnreachable

USER_AGENT = "zoe-local-python/0.1.0"
# Failures a kept-alive connection shows when the server closed it while idle:
# the request never reached the service, so one retry on a new connection is free.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> ServiceError:
        code, message, details = parse_error(self.status, self.body)
        return ServiceError(self.status, code, message, details, retry_after(self.headers.get("retry-after")))


def parse_error(status: int, body: bytes) -> Tuple[str, str, Any]:
    """(code, message, details) of the service's ``{"error": {...}}`` body, or of whatever answered."""
    try:
        err = json.loads(body)["error"]
        return str(err["code"]), str(err.get("message", "")), err.get("details")
    except (ValueError, KeyError, TypeError):
        text = body[:300].decode("utf-8", "replace").strip()
        return f"http_{status}", text or http.client.responses.get(status, "error"), None


def retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class BaseUrl:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http:// or https:// with a host, e.g. http://127.0.0.1:8765, got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"url must not carry a query or fragment, got {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.text = url.rstrip("/")


class Transport:
    def __init__(self, base: BaseUrl, token: Optional[str], timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        host = f"[{base.host}]" if ":" in base.host else base.host
        default_port = 443 if base.scheme == "https" else 80
        fixed = [
            f"Host: {host}" if base.port == default_port else f"Host: {host}:{base.port}",
            f"User-Agent: {USER_AGENT}",
            "Accept: application/json",
        ]
        if token:
            fixed.append(f"Authorization: Bearer {token}")
        self._fixed = "\r\n".join(fixed)
        self._conn: Optional[Connection] = None
        self._lock = threading.Lock()
        self._aborted = False

    def _connect(self, timeout: float) -> Connection:
        return Connection(self.base.host, self.base.port, self.base.scheme == "https", timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """One request; ServiceUnreachable when no complete answer arrived."""
        lines = [f"{method} {self.base.prefix}{path} HTTP/1.1", self._fixed]
        if body is not None:
            lines.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}")
        if headers:
            lines.extend(f"{k}: {v}" for k, v in headers.items())
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1")
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                with self._lock:
                    if self._aborted:
                        raise ServiceUnreachable("request aborted: the client is closing")
                    if self._conn is None:
                        self._conn = self._connect(self.timeout if timeout is None else timeout)
                    elif timeout is not None:
                        self._conn.sock.settimeout(timeout)
                    conn = self._conn
                status, answer_headers, data, closing = conn.exchange(head, body, method == "HEAD")
                if closing:
                    self.reset()
                return Response(status, answer_headers, data)
            except ServiceUnreachable:
                self.reset()
                raise
            except _STALE as error:
                self.reset()
                if reused and attempt == 0 and not self._aborted:
                    continue
                raise ServiceUnreachable(f"{method} {self.base.text}{path}: {describe(error)}") from error
            except (OSError, http.client.HTTPException) as error:
                self.reset()
                raise ServiceUnreachable(f"{method} {self.base.text}{path}: {describe(error)}") from error
        raise AssertionError("unreachable")  # pragma: no cover

    def reset(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abort(self) -> None:
        """From another thread: fail the request in flight (if any) and every later one."""
        with self._lock:
            self._aborted = True
            conn = self._conn
        interrupt(conn)

    def close(self) -> None:
        self.reset()


def describe(error: BaseException) -> str:
    if isinstance(error, socket.timeout) or isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the service running?)"
    text = str(error) or type(error).__name__
    return text


def call_json(
    transport: Transport, method: str, path: str, body: Optional[bytes] = None, timeout: Optional[float] = None
) -> Any:
    """A synchronous call: the answer's JSON, or ServiceError / ServiceUnreachable."""
    resp = transport.request(method, path, body, timeout=timeout)
    if resp.status >= 300:
        raise resp.error()
    try:
        return resp.json()
    except ValueError as error:
        raise ServiceUnreachable(f"{method} {path}: the answer is not JSON") from error
