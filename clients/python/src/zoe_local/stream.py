"""``follow()``: the service's SSE stream as an iterator of events that survives
disconnects, service restarts and hung links.

The parser follows the WHATWG event-stream rules: a block without ``data`` is
no event (the ``retry:``-only block the service sends first, the ``:``
heartbeat comments), ``id:`` and ``retry:`` are remembered. Stored events are
unnamed messages; a named ``reset`` event means the position is beyond the
newest seq; other names are skipped, so a newer service can add kinds.

The iterator resumes from the seq of the last event it yielded with
``Last-Event-ID``, and drops seqs it already yielded, so a reconnect neither
loses nor repeats an event. No byte for ``idle_timeout`` seconds (the service
sends a heartbeat every 2 s by default, ZOE_SSE_HEARTBEAT_MS) counts as a dead
link, e.g. a service stopped with SIGSTOP or a path that drops packets: it
reconnects, and keeps trying until the service answers again.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import random
import socket
import ssl
import threading
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple
from urllib.parse import urlencode

from ._transport import USER_AGENT, BaseUrl, Response, Transport, call_json, describe
from ._wire import interrupt
from .errors import ServiceError, ServiceUnreachable, StreamReset
from .models import ResetEvent, StoredEvent


class SseMessage(NamedTuple):
    event: str
    data: str
    id: Optional[str]


class SseParser:
    """Feeds one decoded line at a time (without its line ending)."""

    def __init__(self) -> None:
        self._data: List[str] = []
        self._event = ""
        self._has_data = False
        self.last_id: Optional[str] = None
        self.retry_ms: Optional[int] = None

    def line(self, line: str) -> Optional[SseMessage]:
        if line == "":
            if not self._has_data:
                self._event = ""
                return None
            msg = SseMessage(self._event or "message", "\n".join(self._data), self.last_id)
            self._data, self._event, self._has_data = [], "", False
            return msg
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_id = value
        elif name == "retry":
            if value.isdigit():
                self.retry_ms = int(value)
        return None


def split_lines(raw: bytes) -> List[str]:
    """One ``readline()`` chunk as lines: CRLF, LF and lone CR all end a line."""
    text = raw.decode("utf-8", "replace")
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n") or text.endswith("\r"):
        text = text[:-1]
    return text.split("\r") if "\r" in text else [text]


class _Follower:
    """What the blocking and the asyncio follower share: the position, the SSE
    parser, resets and the reconnect delay. Subclasses do the I/O and provide
    ``_disconnect()`` and ``_end()``."""

    def __init__(
        self,
        base: BaseUrl,
        token: Optional[str],
        mode: str,
        since_seq: Optional[int],
        *,
        on_reset: Optional[Callable[[ResetEvent], Optional[int]]],
        idle_timeout: float,
        reconnect_delay: Optional[float],
        max_reconnect_delay: float,
        timeout: float,
        logger: logging.Logger,
    ) -> None:
        self._base = base
        self._token = token
        self.mode = mode
        #: Seq of the last event yielded (the resume point); None until known.
        self.position: Optional[int] = since_seq
        self._on_reset = on_reset
        self._idle_timeout = idle_timeout
        self._reconnect_delay = reconnect_delay
        self._max_delay = max_reconnect_delay
        self._timeout = timeout
        self._log = logger
        self._parser = SseParser()
        self._retry_ms: Optional[int] = None
        self._failures = 0
        self._rng = random.Random()
        #: Connections opened, heartbeats (comments) seen, reconnects after a failure.
        self.connects = 0
        self.heartbeats = 0
        self.reconnects = 0

    def _disconnect(self) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

    def _headers(self) -> Dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers["Last-Event-ID"] = str(self.position)
        return headers

    def _path(self) -> str:
        return f"{self._base.prefix}/local/stream?{urlencode({'mode': self.mode})}"

    def _line(self, line: str) -> Optional[StoredEvent]:
        if line.startswith(":"):
            self.heartbeats += 1
            return None
        msg = self._parser.line(line)
        if self._parser.retry_ms is not None:
            self._retry_ms = self._parser.retry_ms
        if msg is None:
            return None
        if msg.event == "message":
            try:
                event = json.loads(msg.data)
                seq = int(event["seq"])
            except (ValueError, KeyError, TypeError):
                self._log.warning("zoe-local: follow(): skipped a message that is not a stored event: %.200r", msg.data)
                return None
            if self.position is not None and seq <= self.position:
                return None  # already yielded before a reconnect
            self.position = seq
            return event  # type: ignore[no-any-return]
        if msg.event == "reset":
            self._reset(msg)
            return None
        if msg.event == "heartbeat":  # the service's ?heartbeat=event form
            self.heartbeats += 1
            return None
        self._log.debug("zoe-local: follow(): ignored an SSE event named %r", msg.event)
        return None

    def _reset(self, msg: SseMessage) -> None:
        newest = _reset_seq(msg)
        if newest is None:
            self._log.warning("zoe-local: follow(): a reset event without a seq: %.200r", msg.data)
            return
        event = ResetEvent(position=self.position if self.position is not None else 0, newest_seq=newest)
        if self._on_reset is None:
            self._end()
            raise StreamReset(event.position, newest)
        chosen = self._on_reset(event)
        self.position = newest if chosen is None else int(chosen)
        if self.position != newest:
            self._disconnect()  # resume from the chosen seq on a new connection

    def _delay(self, why: str, retry_after: Optional[float]) -> float:
        """Seconds to wait before the next connection, after a failure (logged)."""
        self._failures += 1
        self.reconnects += 1
        base = self._reconnect_delay if self._reconnect_delay is not None else (self._retry_ms or 2000) / 1000
        delay = min(self._max_delay, base * 2 ** (self._failures - 1)) * self._rng.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._log.info(
            "zoe-local: follow(%s): %s; reconnecting in %.1f s from seq %s", self.mode, why, delay, self.position
        )
        return delay

    def _newest_seq(self) -> int:
        transport = Transport(self._base, self._token, self._timeout)
        try:
            state = call_json(transport, "GET", f"/local/state?{urlencode({'mode': self.mode})}")
        finally:
            transport.close()
        return int(state.get("last_seq") or 0)


class EventStream(_Follower, Iterator[StoredEvent]):
    """Iterator of stored events of one mode; ``close()`` ends it from any thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn: Optional[http.client.HTTPConnection] = None
        self._resp: Optional[http.client.HTTPResponse] = None
        self._closed = threading.Event()

    def __iter__(self) -> "EventStream":
        return self

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        interrupt(self._conn)

    def _end(self) -> None:
        self.close()
        self._disconnect()

    def __next__(self) -> StoredEvent:
        while True:
            if self._closed.is_set():
                self._disconnect()
                raise StopIteration
            if self._resp is None:
                self._open()
                continue
            try:
                raw = self._resp.readline()
            except (OSError, http.client.HTTPException, ValueError) as error:
                self._lost(
                    describe(error) if not isinstance(error, socket.timeout) else f"no data for {self._idle_timeout} s"
                )
                continue
            if not raw:
                self._lost("the stream ended")
                continue
            self._failures = 0
            for line in split_lines(raw):
                event = self._line(line)
                if event is not None:
                    return event

    def _open(self) -> None:
        try:
            if self.position is None:
                self.position = self._newest_seq()
            headers = self._headers()
            cls = http.client.HTTPSConnection if self._base.scheme == "https" else http.client.HTTPConnection
            conn = cls(self._base.host, self._base.port, timeout=self._timeout)
            self._conn = conn
            if self._closed.is_set():
                return
            conn.request("GET", self._path(), headers=headers)
            resp = conn.getresponse()
        except ServiceError as error:
            if error.status < 500 and error.status not in (408, 429):
                raise
            self._lost(str(error), error.retry_after)
            return
        except (OSError, http.client.HTTPException, ServiceUnreachable) as error:
            self._lost(describe(error))
            return
        if resp.status != 200:
            err = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()).error()
            if resp.status in (408, 429) or resp.status >= 500:
                self._lost(str(err), err.retry_after)
                return
            self._disconnect()
            raise err
        if conn.sock is not None:
            conn.sock.settimeout(self._idle_timeout)
        self._resp = resp
        self._parser = SseParser()
        self.connects += 1

    def _lost(self, why: str, retry_after: Optional[float] = None) -> None:
        self._disconnect()
        if self._closed.is_set():
            return
        self._closed.wait(self._delay(why, retry_after))

    def _disconnect(self) -> None:
        conn, self._conn, self._resp = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


class AsyncEventStream(_Follower, AsyncIterator[StoredEvent]):
    """``afollow()``: the same stream for ``async for``, on asyncio streams, so
    the event loop runs while it waits. Cancelling the task that iterates, or
    ``aclose()``, closes the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._chunked = False
        self._chunk_left = 0
        self._buf = bytearray()
        self._pos = 0
        self._closed = False
        self._wake: Optional["asyncio.Future[None]"] = None
        self._watchdog: Optional[asyncio.TimerHandle] = None
        self._last_data = 0.0
        self._idle = False

    def __aiter__(self) -> "AsyncEventStream":
        return self

    async def __aenter__(self) -> "AsyncEventStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Ends the iteration (a waiting ``__anext__`` stops) and closes the connection."""
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        self._disconnect()

    def _end(self) -> None:
        self.close()

    def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._buf.clear()
        self._pos = 0
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if writer is not None:
            writer.close()  # no wait_closed(): a dead peer must not hold up a cancel

    async def __anext__(self) -> StoredEvent:
        try:
            while True:
                if self._closed:
                    self._disconnect()
                    raise StopAsyncIteration
                if self._reader is None:
                    await self._open()
                    continue
                raw = self._buffered_line()
                if raw is None:
                    # No asyncio.wait_for here: before Python 3.12 it returns a
                    # read that completed as the task was cancelled and drops the
                    # cancel. The idle timeout is a watchdog that aborts the link.
                    try:
                        more = await self._fill()
                    except (OSError, ValueError, asyncio.IncompleteReadError) as error:
                        await self._lost(self._why(describe(error) or type(error).__name__))
                        continue
                    if not more:
                        await self._lost(self._why("the stream ended"))
                    else:
                        self._failures = 0
                    continue
                for line in split_lines(raw):
                    event = self._line(line)
                    if event is not None:
                        return event
        except BaseException:  # CancelledError included: the connection must not outlive the follower
            self._disconnect()
            raise

    def _buffered_line(self) -> Optional[bytes]:
        """The next complete line (with its LF) already read, or None."""
        at = self._buf.find(b"\n", self._pos)
        if at < 0:
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            return None
        line = bytes(self._buf[self._pos : at + 1])
        self._pos = at + 1
        return line

    async def _fill(self) -> bool:
        """Reads more of the stream's body into the buffer; False at its end."""
        reader = self._reader
        assert reader is not None
        if len(self._buf) - self._pos > 1 << 20:
            raise ValueError("an event stream line longer than 1 MiB")
        if self._chunked:
            if self._chunk_left == 0:
                size_line = await reader.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16) if size_line else 0
                if size == 0:
                    return False  # the last chunk (or the connection's end): the service ended the stream
                self._chunk_left = size
            data = await reader.read(min(self._chunk_left, 65_536))
            self._chunk_left -= len(data)
            if data and self._chunk_left == 0:
                await reader.readexactly(2)  # the CRLF after a chunk's data
        else:
            data = await reader.read(65_536)
        self._buf += data
        self._last_data = asyncio.get_running_loop().time()
        return bool(data)

    def _why(self, why: str) -> str:
        return f"no data for {self._idle_timeout} s" if self._idle else why

    def _watch(self) -> None:
        """The idle timeout: aborts a link that sent nothing for ``idle_timeout``
        seconds, which ends the pending read."""
        self._watchdog = None
        writer = self._writer
        if writer is None:
            return
        loop = asyncio.get_running_loop()
        due = self._last_data + self._idle_timeout
        if loop.time() >= due:
            self._idle = True
            writer.transport.abort()
        else:
            self._watchdog = loop.call_at(due, self._watch)

    @staticmethod
    async def _bounded(aw: Any, timeout: float) -> Any:
        """``aw`` within ``timeout`` seconds, else asyncio.TimeoutError; a cancel
        always propagates (unlike asyncio.wait_for before Python 3.12), and a
        connection it opened meanwhile is closed."""
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            task.add_done_callback(_close_orphan)
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_close_orphan)
            raise asyncio.TimeoutError
        return task.result()

    async def _open(self) -> None:
        try:
            if self.position is None:
                self.position = await asyncio.to_thread(self._newest_seq)
            ssl_context = ssl.create_default_context() if self._base.scheme == "https" else None
            reader, writer = await self._bounded(
                asyncio.open_connection(
                    self._base.host,
                    self._base.port,
                    ssl=ssl_context,
                    server_hostname=self._base.host if ssl_context else None,
                    limit=1 << 20,
                ),
                self._timeout,
            )
            self._reader, self._writer = reader, writer
            if self._closed:
                self._disconnect()
                return
            host = f"[{self._base.host}]" if ":" in self._base.host else self._base.host
            lines = [f"GET {self._path()} HTTP/1.1", f"Host: {host}:{self._base.port}"]
            lines += [f"{k}: {v}" for k, v in self._headers().items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, headers = await self._bounded(self._read_head(reader), self._timeout)
            if status != 200:
                body = await self._bounded(self._read_body(reader, headers), self._timeout)
                err = Response(status, headers, body).error()
                self._disconnect()
                if status in (408, 429) or status >= 500:
                    await self._lost(str(err), err.retry_after)
                    return
                raise err
        except ServiceError as error:
            if error.status < 500 and error.status not in (408, 429):
                raise
            await self._lost(str(error), error.retry_after)
            return
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError, ServiceUnreachable) as error:
            await self._lost("timed out" if isinstance(error, asyncio.TimeoutError) else describe(error))
            return
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self._idle = False
        loop = asyncio.get_running_loop()
        self._last_data = loop.time()
        self._watchdog = loop.call_at(self._last_data + self._idle_timeout, self._watch)
        self._parser = SseParser()
        self.connects += 1

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> Tuple[int, Dict[str, str]]:
        while True:
            status_line = await reader.readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
            headers: Dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(parts[1])
            if not 100 <= status < 200:
                return status, headers

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: Dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(min(int(headers["content-length"]), 1 << 20))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while len(body) < 1 << 20:
                size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            return bytes(body)
        return await reader.read(1 << 20)

    async def _lost(self, why: str, retry_after: Optional[float] = None) -> None:
        self._disconnect()
        if self._closed:
            return
        delay = self._delay(why, retry_after)
        wake: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        timer = asyncio.get_running_loop().call_later(delay, lambda: wake.done() or wake.set_result(None))
        self._wake = wake
        try:
            await wake  # close() wakes it early; a cancel cancels it
        finally:
            timer.cancel()
            self._wake = None


def _close_orphan(task: "asyncio.Task[Any]") -> None:
    """A connection opened by a task whose caller gave up on it."""
    if task.cancelled() or task.exception() is not None:
        return
    result = task.result()
    writer = result[1] if isinstance(result, tuple) and len(result) == 2 else None
    if isinstance(writer, asyncio.StreamWriter):
        writer.close()


def _reset_seq(msg: SseMessage) -> Optional[int]:
    """The newest seq a reset event carries: its data as a number, or a
    ``newest_seq``/``last_seq``/``seq`` field, else its ``id:``."""
    try:
        data = json.loads(msg.data)
    except ValueError:
        data = None
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, dict):
        for key in ("newest_seq", "last_seq", "seq"):
            if isinstance(data.get(key), int):
                return int(data[key])
    if msg.id is not None and msg.id.isdigit():
        return int(msg.id)
    return None
