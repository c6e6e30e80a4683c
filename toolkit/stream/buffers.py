"""Bounded hand-over between the capture thread and the rest of the loop.

Two policies, one interface (``put`` / ``get`` / ``close``):

* ``LatestFrameBuffer`` for live cameras: ``put`` never blocks; a new frame replaces an
  unread one, which is counted as dropped. A slow network then shows the newest frame
  instead of falling further and further behind a growing queue.
* ``FifoBuffer`` for files: ``put`` blocks while the buffer is full, so every frame is
  processed and nothing is dropped.

Both record ``high_water`` (the most items ever held) so tests can check the bound.
"""

from __future__ import annotations

import collections
import threading
from abc import ABC, abstractmethod
from typing import Any

CLOSED = object()
"""Returned by ``get`` once the buffer is closed and empty (end of the source)."""


class FrameBuffer(ABC):
    """Common state: a bounded deque guarded by one condition variable.

    Args:
        capacity: the most items held at once (>= 1).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.items: collections.deque = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0
        self.put_count = 0
        self.high_water = 0

    @abstractmethod
    def put(self, item: Any) -> bool:
        """Hand one item over; returns False when the buffer was closed (stop producing)."""

    def get(self, timeout: float | None = None) -> Any:
        """Take the oldest item; ``CLOSED`` at the end, None when ``timeout`` expired first."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.items or self.closed, timeout):
                return None
            if not self.items:
                return CLOSED
            item = self.items.popleft()
            self.cond.notify_all()
            return item

    def close(self) -> None:
        """No more items will come; wakes every waiting producer and consumer."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _append(self, item: Any) -> None:
        self.items.append(item)
        self.put_count += 1
        self.high_water = max(self.high_water, len(self.items))
        self.cond.notify_all()


class LatestFrameBuffer(FrameBuffer):
    """Latest frame wins: ``put`` evicts the oldest unread item when full and counts it."""

    def put(self, item: Any) -> bool:
        with self.cond:
            if self.closed:
                return False
            while len(self.items) >= self.capacity:
                self.items.popleft()
                self.dropped += 1
            self._append(item)
            return True


class FifoBuffer(FrameBuffer):
    """Every frame: ``put`` waits for room, so a file is processed without losing a frame."""

    def put(self, item: Any) -> bool:
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) < self.capacity or self.closed)
            if self.closed:
                return False
            self._append(item)
            return True


def make_buffer(latest_frame_wins: bool, capacity: int = 1) -> FrameBuffer:
    """The buffer for a source: latest-frame-wins for live sources, FIFO for files."""
    return LatestFrameBuffer(capacity) if latest_frame_wins else FifoBuffer(capacity)
