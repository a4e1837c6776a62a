"""HTTP/1.1 request/response on one keep-alive socket, for the sender.

Not ``http.client``: it parses every answer's headers with the ``email``
package, about half a millisecond of Python per request on the sender
thread, all of it holding the GIL that ``emit()`` needs, and it reads bodies
in small pieces (each ``recv`` a GIL hand-off). Here a request is one
``sendall`` and an answer a few ``recv`` calls, parsed with bytes methods
(C). It speaks what the service answers: a status line, headers, and a body
framed by Content-Length, chunked transfer coding, or the end of the
connection.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Dict, Optional, Tuple

MAX_HEAD = 65_536
RECV = 262_144


def interrupt(conn: object) -> None:
    """From another thread: shuts down ``conn.sock`` (if any), so a blocked send or recv on it fails at once."""
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class Connection:
    """One TCP (or TLS) connection; ``sock`` may be shut down from another thread to abort."""

    def __init__(self, host: str, port: int, tls: bool, timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def exchange(
        self, head: bytes, body: Optional[bytes], head_request: bool = False
    ) -> Tuple[int, Dict[str, str], bytes, bool]:
        """Sends one request; (status, headers with lower-case names, body, the server will close)."""
        self.sock.sendall(head + body if body else head)
        status, version, headers = self._read_head(first=True)
        while 100 <= status < 200 and status != 101:  # interim answers precede the real one
            status, version, headers = self._read_head(first=False)
        connection = headers.get("connection", "").lower()
        closing = connection == "close" or (version == b"HTTP/1.0" and connection != "keep-alive")
        if head_request or status in (204, 304):
            return status, headers, b"", closing
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, self._read_chunked(), closing
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise http.client.HTTPException(f"invalid Content-Length {length!r}")
            return status, headers, self._read_exactly(int(length)), closing
        return status, headers, self._read_to_end(), True

    def _fill(self, first: bool = False) -> None:
        chunk = self.sock.recv(RECV)
        if not chunk:
            if first and not self._buf:  # closed before answering: a stale keep-alive connection
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            raise http.client.IncompleteRead(bytes(self._buf))
        self._buf += chunk

    def _take_until(self, separator: bytes, what: str, first: bool = False) -> bytes:
        """The buffer up to ``separator`` (reading more until it is there), which is consumed too."""
        end = self._buf.find(separator)
        while end < 0:
            if len(self._buf) > MAX_HEAD:
                raise http.client.HTTPException(f"{what} exceeds {MAX_HEAD} bytes")
            self._fill(first)
            end = self._buf.find(separator)
        taken = bytes(self._buf[:end])
        del self._buf[: end + len(separator)]
        return taken

    def _read_head(self, first: bool) -> Tuple[int, bytes, Dict[str, str]]:
        lines = self._take_until(b"\r\n\r\n", "the answer's head", first).split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(lines[0].decode("latin-1", "replace"))
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise http.client.HTTPException(f"malformed header line {line[:80]!r}")
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return int(parts[1]), parts[0], headers

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_line(self) -> bytes:
        return self._take_until(b"\r\n", "a chunk line")

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise http.client.HTTPException(f"invalid chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return bytes(out)
            out += self._read_exactly(size)
            if self._read_exactly(2) != b"\r\n":
                raise http.client.HTTPException("a chunk does not end with CRLF")

    def _read_to_end(self) -> bytes:
        while True:
            chunk = self.sock.recv(RECV)
            if not chunk:
                data = bytes(self._buf)
                self._buf.clear()
                return data
            self._buf += chunk
