"""wire.Connection against a scripted HTTP server on loopback: the framings and
failures the sender must tell apart (a stale keep-alive connection is retried,
a truncated answer is not an acknowledgement)."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import List, Tuple

import pytest

from zoe_local._wire import Connection


def serve(answers: List[bytes]) -> Tuple[int, List[bytes], threading.Thread]:
    """Accepts one connection; for each request read, writes the next answer; closes after the last (or at b"")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen: List[bytes] = []

    def run() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            data = b""
            for answer in answers:
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(data) < length:
                    data += conn.recv(65536)
                seen.append(head + b"\r\n\r\n" + data[:length])
                data = data[length:]
                if not answer:
                    return
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], seen, thread


@pytest.fixture
def request_head() -> bytes:
    return b"POST /local/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"


def test_exchange_reads_content_length_and_chunked_answers_on_one_connection(request_head: bytes):
    port, seen, _ = serve(
        [
            b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"seq": 1}\n',
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n',
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ]
    )
    conn = Connection("127.0.0.1", port, False, 5)
    assert conn.exchange(request_head, b"[]") == (
        201,
        {"content-type": "application/json", "content-length": "11"},
        b'{"seq": 1}\n',
        False,
    )
    status, headers, body, closing = conn.exchange(request_head, b"[]")
    assert (status, body, closing, headers["x-a"]) == (200, b'{"a":1}', False, "1, 2")
    assert conn.exchange(request_head, b"[]")[:3] == (204, {}, b"")
    assert seen[0].endswith(b"\r\n\r\n[]")


def test_exchange_reads_to_the_end_without_a_length_and_reports_the_close(request_head: bytes):
    port, _, _ = serve([b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 2\r\n\r\nbusy"])
    conn = Connection("127.0.0.1", port, False, 5)
    assert conn.exchange(request_head, b"[]") == (503, {"retry-after": "2"}, b"busy", True)


def test_a_connection_closed_before_any_answer_is_remote_disconnected(request_head: bytes):
    port, _, _ = serve([b""])
    with pytest.raises(http.client.RemoteDisconnected):
        Connection("127.0.0.1", port, False, 5).exchange(request_head, b"[]")


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n{"seq":',  # body cut short
        b"HTTP/1.1 201 Crea",  # head cut short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",  # chunk cut short
    ],
)
def test_an_answer_cut_short_is_an_incomplete_read_not_an_answer(request_head: bytes, answer: bytes):
    port, _, _ = serve([answer])
    conn = Connection("127.0.0.1", port, False, 5)
    with pytest.raises(http.client.IncompleteRead):
        conn.exchange(request_head, b"[]")


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_a_malformed_answer_is_an_http_exception(request_head: bytes, answer: bytes):
    port, _, _ = serve([answer])
    with pytest.raises(http.client.HTTPException):
        Connection("127.0.0.1", port, False, 5).exchange(request_head, b"[]")
