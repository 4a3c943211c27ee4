"""Reading the support API's next pages while the current ones are validated and loaded.

The support API is paced under its rate limit (a page every ~52 ms at 20 requests/s): read in
the loading thread, every millisecond spent validating and loading a batch of pages is added
to the pacing instead of overlapping it (at a million customers the 1,004-page backfill took
65 s on a quiet machine, 56 s read ahead, where the pacing alone needs 53 s). A reader thread that stays some pages ahead keeps the
requests on their schedule; the pages, their order and every error stay exactly as the API
produced them, so the load's semantics do not change. (For the marketplace database, read by
binary COPY as fast as the load can take it, a read-ahead changed nothing measurable.)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


class _Done:
    """End of the source (or its error) in the queue."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Reader(Generic[T]):
    def __init__(self, source: Iterable[T], depth: int, name: str) -> None:
        self._source = source
        self._queue: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: T | _Done) -> bool:
        """False once the consumer has gone (then nothing more is read from the source)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put(item):
                    break
            else:
                self._put(_Done())
        except BaseException as exc:  # handed to the consumer, raised where it reads
            self._put(_Done(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator source releases its connection here
                close()

    def items(self) -> Iterator[T]:
        """A generator: the thread starts with the first item asked for, not before."""
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            self._stop.set()
            self._thread.join()


def read_ahead(source: Iterable[T], depth: int = 2, name: str = "read-ahead") -> Iterator[T]:
    """The items of `source` in order, read by a thread up to `depth` items ahead.

    An exception raised by the source is raised here, after the items before it. When the
    consumer stops early (an error of its own, or `close()`), the reader stops reading and the
    source is closed in the reader's thread — the thread that used it — before this returns.
    The source must not be advanced by anyone else meanwhile."""
    if depth < 1:
        raise ValueError(f"read_ahead depth must be at least 1, got {depth}")
    return _Reader(source, depth, name).items()
