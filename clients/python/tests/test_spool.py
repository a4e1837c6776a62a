"""Spool.append() stores a whole batch or nothing, however many statements it takes."""

from __future__ import annotations

import sqlite3

import pytest

from zoe_local._spool import Spool, _pieces


def test_pieces_are_powers_of_two_that_add_up():
    for n in (1, 2, 3, 400, 4096, 5000, 12_345):
        pieces = _pieces(n)
        assert sum(pieces) == n and all(p & (p - 1) == 0 for p in pieces)
    assert _pieces(400) == [256, 128, 16]


def test_an_append_that_fails_in_its_last_statement_stores_none_of_its_rows(spool: str):
    store = Spool(spool)
    store.append([(b'{"n":0}', False, 7)])
    # A row the database refuses, third of three: rows 1-2 go in one statement, row 3 in another.
    sqlite3.connect(spool).execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON spool WHEN NEW.payload = CAST('{\"n\":3}' AS BLOB) BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.append([(b'{"n":1}', False, 7), (b'{"n":2}', False, 7), (b'{"n":3}', False, 7)])
    assert store.events == 1
    assert [bytes(p) for (p,) in sqlite3.connect(spool).execute("SELECT payload FROM spool ORDER BY seq")] == [
        b'{"n":0}'
    ]
    assert store.append([(b'{"n":4}', False, 7)]) == 2  # the next seq follows the last stored row
    store.close()
