"""The emit ring (_ring.py) on its own, one process, producer and consumer
interleaved by hand: records come back whole, in order and only once, across
wrap-around; the producer never reuses room the consumer has not committed;
a half-written or stale record reads as "nothing yet" rather than as data; a
new consumer recovers from the published tail. The helper and emit() rely on
all of this, and their tests cannot reach the torn and stale cases."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from zoe_local._ring import (
    CONTROL,
    CRITICAL_EVENT,
    DURABLE_EVENT,
    EVENT,
    HEADER,
    RingConsumer,
    RingProducer,
    ring_capacity,
)

CAPACITY = 504  # the smallest ring: 63 * 8 bytes, so tests wrap around quickly


@pytest.fixture
def ring(tmp_path: Path) -> Iterator[Tuple[RingProducer, RingConsumer]]:
    producer = RingProducer(str(tmp_path / "emit.ring"), CAPACITY)
    consumer = RingConsumer(producer.path)
    yield producer, consumer
    consumer.close()
    producer.close()


def slot(producer: RingProducer, position: int) -> slice:
    """Where the record at ``position`` starts in the mapping (its 8-byte head)."""
    at = HEADER + position % producer.capacity
    return slice(at, at + 8)


def test_ring_capacity_gives_a_multiple_of_eight_whose_eighth_is_odd():
    for requested in (0, 100, 504, 512, 4096, 8 * 1001, 1 << 20, (1 << 20) + 5):
        capacity = ring_capacity(requested)
        assert capacity % 8 == 0 and (capacity // 8) % 2 == 1, requested
        assert capacity >= 504 and capacity > requested - 16
    assert ring_capacity(8 * 1001) == 8 * 1001
    assert ring_capacity(8 * 1000) == 8 * 999


def test_put_then_take_returns_records_in_order_with_their_kinds(ring):
    producer, consumer = ring
    sent = [(EVENT, b"first"), (CRITICAL_EVENT, b"second"), (CONTROL, b"\x00ctl"), (DURABLE_EVENT, b"x" * 100)]
    for kind, body in sent:
        assert producer.put(kind, body)
    assert consumer.take(100, 1 << 20) == sent
    assert consumer.take(100, 1 << 20) == []
    assert consumer.cursor == producer.head


def test_records_come_back_in_order_across_many_laps_with_skips_at_the_end(ring):
    producer, consumer = ring
    rng = random.Random(7)
    # Sizes up to the largest body, several of which cannot fit in the room left before the end.
    sizes = [1, 7, 8, 9, 56, 100, 200, 233, 240]
    sent: List[Tuple[int, bytes]] = []
    got: List[Tuple[int, bytes]] = []
    record_bytes = 0
    for _ in range(1000):  # rounds: the producer puts a few, the consumer takes a few and commits
        for _ in range(rng.randint(1, 6)):
            n = rng.choice(sizes)
            record = (rng.choice((EVENT, CRITICAL_EVENT, CONTROL)), bytes([len(sent) % 251]) * n)
            if not producer.put(*record):
                break
            sent.append(record)
            record_bytes += 8 + (n + 7) // 8 * 8
        got += consumer.take(rng.randint(1, 8), 1 << 20)
        consumer.commit(consumer.cursor, consumer.read)
    got += consumer.take(len(sent), 1 << 20)
    assert len(sent) > 1000 and got == sent
    assert producer.head > 100 * producer.capacity  # many laps
    assert producer.head > record_bytes  # some puts skipped to the start of the ring
    assert consumer.read == producer.written == sum(kind != CONTROL for kind, _ in sent)


def test_put_returns_false_when_full_and_overwrites_nothing_until_the_consumer_commits(ring):
    producer, consumer = ring
    sent = []
    while producer.put(EVENT, bytes([len(sent)]) * 48):
        sent.append(bytes([len(sent)]) * 48)
    assert len(sent) == CAPACITY // 56
    assert [body for _, body in consumer.take(3, 1 << 20)] == sent[:3]
    before = producer.mm[HEADER:]
    assert not producer.put(EVENT, b"n" * 48)  # taking is not committing
    assert not producer.put(EVENT, b"n")
    assert producer.mm[HEADER:] == before
    assert [body for _, body in consumer.take(100, 1 << 20)] == sent[3:]

    consumer.commit(consumer.cursor, consumer.read)
    assert producer.put(EVENT, b"n" * 48)
    assert consumer.take(100, 1 << 20) == [(EVENT, b"n" * 48)]


def test_take_returns_at_most_max_records(ring):
    producer, consumer = ring
    for i in range(5):
        producer.put(EVENT, b"%d" % i)
    assert consumer.take(2, 1 << 20) == [(EVENT, b"0"), (EVENT, b"1")]
    assert consumer.take(10, 1 << 20) == [(EVENT, b"2"), (EVENT, b"3"), (EVENT, b"4")]


def test_take_stops_once_max_bytes_of_bodies_are_taken_but_always_takes_one(ring):
    producer, consumer = ring
    for i in range(6):
        producer.put(EVENT, b"%d" % i * 10)
    assert [body[:1] for _, body in consumer.take(100, 20)] == [b"0", b"1"]
    assert [body[:1] for _, body in consumer.take(100, 25)] == [b"2", b"3", b"4"]  # the last one crosses it
    assert [body[:1] for _, body in consumer.take(100, 1)] == [b"5"]  # a body bigger than max_bytes is not stuck


def test_ready_says_whether_a_record_waits_without_moving_the_cursor(ring):
    producer, consumer = ring
    assert not consumer.ready()
    producer.put(EVENT, b"one")
    assert consumer.ready() and consumer.ready()
    assert (consumer.cursor, consumer.read) == (0, 0)
    assert consumer.take(10, 1 << 20) == [(EVENT, b"one")]
    assert not consumer.ready()


def test_a_record_whose_head_is_not_yet_written_reads_as_nothing_and_is_not_skipped(ring):
    producer, consumer = ring
    producer.put(EVENT, b"a")
    where = slot(producer, producer.head)
    producer.put(EVENT, b"b" * 30)
    producer.put(EVENT, b"c")
    head = producer.mm[where]
    producer.mm[where] = bytes(8)  # the body is there, its head is not yet
    assert consumer.take(10, 1 << 20) == [(EVENT, b"a")]
    assert not consumer.ready() and consumer.take(10, 1 << 20) == []
    producer.mm[where] = head
    assert consumer.take(10, 1 << 20) == [(EVENT, b"b" * 30), (EVENT, b"c")]


def test_a_record_whose_body_fails_its_check_reads_as_nothing_until_it_is_whole(ring):
    producer, consumer = ring
    producer.put(EVENT, b"a")
    body_at = slot(producer, producer.head).stop + 5
    producer.put(CRITICAL_EVENT, b"0123456789")
    producer.put(EVENT, b"c")
    producer.mm[body_at] = ord("X")  # a body byte not yet written, its head already is
    assert consumer.take(10, 1 << 20) == [(EVENT, b"a")]
    assert consumer.take(10, 1 << 20) == []
    producer.mm[body_at] = ord("5")
    assert consumer.take(10, 1 << 20) == [(CRITICAL_EVENT, b"0123456789"), (EVENT, b"c")]


def test_a_stale_record_from_an_earlier_lap_at_the_cursor_is_not_read(ring):
    producer, consumer = ring
    # Records of 56 bytes fill the ring exactly: after a lap the cursor is back
    # at the first record, whose bytes are still there, whole and well formed.
    producer.put(EVENT, b"lap 0".ljust(48))
    first = producer.mm[HEADER : HEADER + 56]
    for i in range(1, CAPACITY // 56):
        producer.put(EVENT, b"record %d" % i * 6)
    assert len(consumer.take(100, 1 << 20)) == CAPACITY // 56
    consumer.commit(consumer.cursor, consumer.read)
    assert consumer.cursor == CAPACITY and producer.mm[HEADER : HEADER + 56] == first
    assert not consumer.ready() and consumer.take(10, 1 << 20) == []

    # And a copy of an earlier record put where the next one will go.
    producer.put(EVENT, b"lap 1")
    at = slot(producer, producer.head).start
    producer.mm[at : at + 56] = first
    assert consumer.take(10, 1 << 20) == [(EVENT, b"lap 1")]
    assert consumer.take(10, 1 << 20) == []
    producer.put(EVENT, b"next")
    assert consumer.take(10, 1 << 20) == [(EVENT, b"next")]


def test_a_new_consumer_starts_at_the_published_tail_and_reads_only_uncommitted_records(ring):
    producer, consumer = ring
    sent = [(EVENT, b"e0"), (CONTROL, b"c0"), (EVENT, b"e1"), (EVENT, b"e2"), (CONTROL, b"c1"), (EVENT, b"e3")]
    for record in sent:
        producer.put(*record)
    assert consumer.take(3, 1 << 20) == sent[:3]
    consumer.commit(consumer.cursor, consumer.read)
    committed = consumer.cursor
    assert consumer.take(10, 1 << 20) == sent[3:]  # read, never committed: then the helper dies

    again = RingConsumer(producer.path)
    try:
        assert (again.tail, again.cursor, again.consumed, again.read) == (committed, committed, 2, 2)
        assert again.take(10, 1 << 20) == sent[3:]
        assert again.read == 4
    finally:
        again.close()


def test_written_and_consumed_count_events_but_not_control_records(ring):
    producer, consumer = ring
    for kind in (EVENT, CONTROL, CRITICAL_EVENT, CONTROL, DURABLE_EVENT):
        producer.put(kind, b"body")
    assert producer.written == 3
    assert len(consumer.take(10, 1 << 20)) == 5 and consumer.read == 3
    consumer.commit(consumer.cursor, consumer.read)
    assert producer.consumed == 0  # until the producer reads what was published
    producer.refresh()
    assert producer.consumed == 3


def test_the_producer_sees_the_consumers_sleeping_flag(ring):
    producer, consumer = ring
    assert not producer.consumer_sleeping
    consumer.set_sleeping(True)
    assert producer.consumer_sleeping
    consumer.set_sleeping(False)
    assert not producer.consumer_sleeping


def test_each_sleep_of_the_consumer_has_a_new_number_so_the_producer_rings_once_per_sleep(ring):
    producer, consumer = ring
    seen = set()
    for _ in range(3):
        consumer.set_sleeping(True)
        seen.add(producer.consumer_sleep())
        consumer.set_sleeping(False)
        assert producer.consumer_sleep() in seen  # waking keeps the number
    assert len(seen) == 3


def test_a_body_too_large_for_the_ring_raises_value_error_and_changes_nothing(ring):
    producer, consumer = ring
    with pytest.raises(
        ValueError, match=r"Cannot put a record of 300 bytes in the emit ring: a record holds 1 to \d+ bytes"
    ):
        producer.put(EVENT, b"x" * 300)
    assert producer.head == 0 and producer.written == 0
    assert producer.put(EVENT, b"x" * 240)  # the largest body a 504-byte ring takes
    assert consumer.take(10, 1 << 20) == [(EVENT, b"x" * 240)]


def test_opening_a_file_that_is_not_a_ring_raises_value_error(tmp_path: Path):
    for name, content in (("other", b"SQLite format 3\x00" * 300), ("empty", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="not a zoe-local ring file"):
            RingConsumer(str(tmp_path / name))


def test_a_body_of_the_limit_the_error_states_can_be_put(ring):
    producer, _ = ring
    with pytest.raises(ValueError) as error:
        producer.put(EVENT, b"x" * 10_000)
    limit = int(str(error.value).split(" to ")[1].split()[0])
    assert producer.put(EVENT, b"x" * limit)


def test_an_empty_body_is_read_or_refused(ring):
    producer, consumer = ring
    try:
        accepted = producer.put(EVENT, b"")
    except ValueError:
        return
    producer.put(EVENT, b"after")
    assert accepted and consumer.take(10, 1 << 20) == [(EVENT, b""), (EVENT, b"after")]
