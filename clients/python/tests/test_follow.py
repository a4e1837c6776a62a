"""follow(): every stored event once, in seq order, across reconnects and service restarts."""

from __future__ import annotations

import threading
from typing import List

import pytest
from conftest import Service, assert_gapless_within_ranges, wait_until

from zoe_local import Client, ResetEvent, ServiceError, StoredEvent, StreamReset
from zoe_local.stream import SseParser, split_lines


def parse(text: str):
    parser = SseParser()
    out = []
    for raw in text.encode().splitlines(keepends=True):
        for line in split_lines(raw):
            msg = parser.line(line)
            if msg is not None:
                out.append(msg)
    return out, parser


def test_the_sse_parser_skips_retry_only_and_comment_blocks():
    # What the service sends first: a retry-only block, then heartbeats.
    msgs, parser = parse('retry: 2000\n\n:\n\n: heartbeat\n\nid: 7\ndata: {"seq":7}\n\n')
    assert [(m.event, m.data, m.id) for m in msgs] == [("message", '{"seq":7}', "7")]
    assert parser.retry_ms == 2000


def test_the_sse_parser_reads_crlf_multiline_data_and_named_events():
    msgs, _ = parse('event: reset\r\ndata: {"newest_seq": 3}\r\n\r\ndata: a\ndata:b\n\nevent: future-kind\ndata: x\n\n')
    assert [(m.event, m.data) for m in msgs] == [
        ("reset", '{"newest_seq": 3}'),
        ("message", "a\nb"),
        ("future-kind", "x"),
    ]


def collect(stream, into: List[StoredEvent], want: int) -> threading.Thread:
    def run() -> None:
        for event in stream:
            into.append(event)
            if len(into) >= want:
                break

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def wait_for(n: int, events: List[StoredEvent]) -> None:
    wait_until(lambda: len(events) >= n, what=f"{n} events followed (got {len(events)})")


def test_follow_resumes_across_a_service_restart_without_loss_or_repeat(service_factory, spool: str):
    service: Service = service_factory({"ZOE_SSE_HEARTBEAT_MS": "200", "ZOE_SSE_RETRY_MS": "100"})
    zoe = Client(service.url, mode="live", spool_path=spool, backoff_max=0.3, exit_timeout=None)
    stream = zoe.follow(since_seq=0, idle_timeout=5)
    got: List[StoredEvent] = []
    reader = collect(stream, got, 600)
    for i in range(300):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    wait_for(300, got)
    wait_until(lambda: stream.heartbeats > 0, what="a heartbeat on the idle stream")
    service.kill()
    for i in range(300, 600):
        zoe.emit("TICK", "PRICE", f"tick {i}")  # spooled while the service is down
    service.start()
    assert zoe.flush(30) == 0
    wait_for(600, got)
    reader.join(5)
    stream.close()
    zoe.close(1)
    # Two starts, two seq ranges: gapless within each, the restart's range above the first.
    seqs = [e["seq"] for e in got]
    assert seqs == [e["seq"] for e in service.stored("live")]
    assert_gapless_within_ranges(seqs, service.range_starts("live"))
    assert len(service.range_starts("live")) == 2
    assert [e["body"] for e in got] == [f"tick {i}" for i in range(600)]
    assert stream.connects >= 2 and stream.reconnects >= 1 and stream.position == seqs[-1]


def test_follow_goes_on_across_a_rebuilt_store_without_a_reset(service_factory, spool: str):
    """The box's disk is lost: a new, empty store answers on the same address. Its
    seqs start a new range above everything the follower saw, so follow() gets
    the new events in order, with no reset and no manual step."""
    env = {"ZOE_SSE_HEARTBEAT_MS": "200", "ZOE_SSE_RETRY_MS": "100"}
    old: Service = service_factory(env, name="old")
    zoe = Client(old.url, mode="live", spool_path=spool, backoff_max=0.3, exit_timeout=None)
    resets: List[ResetEvent] = []
    stream = zoe.follow(since_seq=0, idle_timeout=5, on_reset=lambda r: resets.append(r))
    got: List[StoredEvent] = []
    reader = collect(stream, got, 10)
    for i in range(5):
        zoe.emit("TICK", "PRICE", f"old {i}")
    wait_for(5, got)
    old.kill()
    rebuilt: Service = service_factory(env, start=False, name="rebuilt")
    rebuilt.port = old.port
    rebuilt.start()
    for i in range(5):
        zoe.emit("TICK", "PRICE", f"new {i}")
    assert zoe.flush(30) == 0
    wait_for(10, got)
    reader.join(5)
    stream.close()
    zoe.close(1)
    assert [e["body"] for e in got] == [f"old {i}" for i in range(5)] + [f"new {i}" for i in range(5)]
    new_seqs = [e["seq"] for e in got[5:]]
    assert new_seqs[0] > got[4]["seq"] and new_seqs == list(range(new_seqs[0], new_seqs[0] + 5))
    assert new_seqs[0] == rebuilt.range_starts("live")[0]
    assert resets == [] and stream.position == new_seqs[-1]


def test_follow_without_since_seq_starts_at_the_newest_event(service: Service, spool: str):
    with Client(service.url, mode="paper", spool_path=spool) as zoe:
        for i in range(5):
            zoe.emit("T", "S", f"old {i}")
        assert zoe.flush(10) == 0
        with zoe.follow() as stream:
            got: List[StoredEvent] = []
            reader = collect(stream, got, 2)
            wait_until(lambda: stream.connects > 0, what="the stream to connect")
            zoe.emit("T", "S", "new 0")
            zoe.emit("T", "S", "new 1")
            wait_for(2, got)
            reader.join(5)
        assert [e["body"] for e in got] == ["new 0", "new 1"]


def test_close_ends_a_follow_blocked_on_a_quiet_stream(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        stream = zoe.follow(since_seq=0)
        got: List[StoredEvent] = []
        reader = collect(stream, got, 1)
        wait_until(lambda: stream.connects > 0, what="the stream to connect")
        stream.close()
        reader.join(5)
        assert not reader.is_alive() and got == []


def test_follow_raises_for_a_wrong_token(service_factory, spool: str):
    service: Service = service_factory({"ZOE_API_TOKEN": "right-token-0123456789"})
    with Client(service.url, "wrong-token-0123456789", mode="live", spool_path=spool) as zoe:
        with pytest.raises(ServiceError) as info:
            next(zoe.follow(since_seq=0))
        assert info.value.status == 401


def test_follow_raises_stream_reset_for_a_position_beyond_the_newest_seq(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        for i in range(5):
            zoe.emit("T", "S", f"event {i}")
        assert zoe.flush(10) == 0
        newest = service.stored("live")[-1]["seq"]
        # A follower whose seqs came from another database, beyond everything this one holds.
        with pytest.raises(StreamReset) as info:
            next(zoe.follow(since_seq=newest + 1_000))
        assert (info.value.position, info.value.newest_seq) == (newest + 1_000, newest)


def test_follow_with_on_reset_goes_on_from_the_seq_the_callback_returns(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        for i in range(5):
            zoe.emit("T", "S", f"event {i}")
        assert zoe.flush(10) == 0
        resets: List[ResetEvent] = []

        seqs = [e["seq"] for e in service.stored("live")]

        def resync(reset: ResetEvent) -> int:
            resets.append(reset)
            return seqs[2]  # re-read from the third event on, e.g. after reloading state()

        with zoe.follow(since_seq=seqs[-1] + 1_000, on_reset=resync) as stream:
            got: List[StoredEvent] = []
            reader = collect(stream, got, 3)
            wait_until(lambda: resets, what="the reset")
            zoe.emit("T", "S", "after the reset")
            wait_for(3, got)
            reader.join(5)
        assert resets == [ResetEvent(position=seqs[-1] + 1_000, newest_seq=seqs[-1])]
        assert [e["body"] for e in got] == ["event 3", "event 4", "after the reset"]


def test_follow_reconnects_when_the_link_hangs_and_resumes_when_it_answers(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        with zoe.follow(since_seq=0, idle_timeout=1.0, reconnect_delay=0.2) as stream:
            got: List[StoredEvent] = []
            reader = collect(stream, got, 2)
            zoe.emit("T", "S", "before")
            wait_for(1, got)
            service.pause()  # SIGSTOP: no reset, no close; only silence
            try:
                wait_until(lambda: stream.reconnects >= 1, 10, "the follower to give up on the silent link")
            finally:
                service.resume()
            zoe.emit("T", "S", "after")
            wait_for(2, got)
            reader.join(5)
        assert [e["body"] for e in got] == ["before", "after"]
