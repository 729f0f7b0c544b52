"""Bounded queues between stages.

`LatestQueue` keeps at most `maxsize` items. In the live policy (the default) a put into a full queue
evicts the *oldest* item and counts it as dropped, so a slow consumer always sees the newest frame and
latency never builds up. In the lossless policy (offline processing of a file, where every frame must
reach the output) a put waits for room instead; nothing is dropped and the producer is slowed down.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any


class QueueClosed(Exception):
    """Raised by get()/put() once the queue was closed (the pipeline is stopping)."""


class LatestQueue:
    def __init__(self, name: str, maxsize: int = 1, lossless: bool = False):
        # name: shown in stats ("capture->tracking"); maxsize: items kept (>= 1);
        # lossless: block the producer instead of evicting (offline files, never for a live camera).
        if maxsize < 1:
            raise ValueError(f"queue {name!r}: maxsize must be >= 1, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self.lossless = lossless
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._dropped = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        """Items evicted so far because the consumer was slower than the producer."""
        with self._cond:
            return self._dropped

    def put(self, item: Any, force: bool = False) -> None:
        """Add an item; evicts the oldest when full (or waits, in the lossless policy).

        force: neither wait nor evict: the item goes in even if that exceeds maxsize by one (the
        end-of-stream sentinel, which must not push out the last frame nor wait on a dead consumer).
        """
        with self._cond:
            if self._closed:
                raise QueueClosed(self.name)
            if force:
                self._items.append(item)
                self._cond.notify_all()
                return
            if self.lossless:
                while len(self._items) >= self.maxsize and not self._closed:
                    self._cond.wait()
                if self._closed:
                    raise QueueClosed(self.name)
            while len(self._items) >= self.maxsize:
                self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """Oldest item still queued; waits up to `timeout` seconds (None = forever).

        Raises TimeoutError when nothing came in time, QueueClosed once closed and empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    raise QueueClosed(self.name)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"nothing arrived on queue {self.name!r} within {timeout} s")
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiting producer and consumer; later puts and empty gets raise QueueClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
