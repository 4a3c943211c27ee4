"""The read-ahead thread of a load: same batches in the same order, the source's errors where
they happened, the source closed when the load stops early, the next batches read while the
current one is worked on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from orchestration.lib.ingest.read_ahead import read_ahead


class Source:
    """A generator-backed source that records which thread ran it and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.n, self.fail_at, self.delay = n, fail_at, delay
        self.produced = 0
        self.closed = False
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise ConnectionError(f"source failed at {i}")
                time.sleep(self.delay)
                self.produced += 1
                yield i
        finally:
            self.closed = True


def test_yields_every_item_in_order_from_another_thread() -> None:
    source = Source(50)
    assert list(read_ahead(iter(source), name="reader-x")) == list(range(50))
    assert source.threads == {"reader-x"}
    assert source.closed


def test_source_error_is_raised_after_the_items_before_it() -> None:
    got: list[int] = []

    def consume() -> None:
        for item in read_ahead(iter(Source(10, fail_at=3))):
            got.append(item)

    with pytest.raises(ConnectionError, match="failed at 3"):
        consume()
    assert got == [0, 1, 2]


def test_consumer_error_stops_reading_and_closes_the_source() -> None:
    source = Source(1000)

    def load() -> None:
        for item in read_ahead(iter(source), depth=2):
            if item == 5:
                raise RuntimeError("upsert failed")

    with pytest.raises(RuntimeError, match="upsert failed"):
        load()
    # stopped within the read-ahead depth, not at the end of the source: items 0-5 handed
    # over, two queued, one more read and waiting for room
    assert source.produced <= 6 + 2 + 1
    assert source.closed


def test_nothing_is_read_before_the_first_item_is_asked_for() -> None:
    source = Source(10)
    items = read_ahead(iter(source))
    time.sleep(0.2)
    assert source.produced == 0
    assert next(items) == 0
    items.close()
    assert source.closed


def test_the_next_batches_are_read_while_the_current_one_is_worked_on() -> None:
    source = Source(10)
    items = read_ahead(iter(source), depth=2)
    assert next(items) == 0
    # still holding batch 0: the reader fetches ahead without being asked
    deadline = time.monotonic() + 5
    while source.produced < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # item 0 handed over, items 1-2 queued, item 3 waiting for room: nothing further
    assert 3 <= source.produced <= 4
    assert list(items) == list(range(1, 10))


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        read_ahead([1, 2], depth=0)
