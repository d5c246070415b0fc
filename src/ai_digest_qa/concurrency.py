"""One first-come, first-served gate for answer generation, shared by every way in.

The web page's answers are limited by Gradio's queue, but the OpenAI-compatible API and
the MCP tools arrive through other doors. On two cores a second generation at once halves
everyone's speed, so all of them wait here for the same ``ui_concurrency`` slots, in
arrival order: API clients cannot starve page users, nor the reverse. Gradio's queue
keeps its own limit in front of this one; this gate is what they all share.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class ServerBusy(RuntimeError):
    """More requests are waiting than the queue holds; the message says to retry."""


class AnswerSlots:
    """At most ``limit`` holders at once; up to ``max_waiting`` others wait, in order."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        if limit < 1 or max_waiting < 0:
            raise ValueError("limit must be >= 1 and max_waiting >= 0")
        self.limit = limit
        self.max_waiting = max_waiting
        self._active = 0
        self._waiting: deque[int] = deque()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def is_full(self) -> bool:
        """Whether a new request would be refused (:class:`ServerBusy`)."""
        return len(self._waiting) >= self.max_waiting and self._active >= self.limit

    @contextmanager
    def hold(self, cancel: threading.Event | None = None) -> Iterator[bool]:
        """Wait for a slot in arrival order and hold it for the ``with`` block.

        Yields True once the slot is held, or False if ``cancel`` was set while waiting
        (the caller then does nothing). Raises :class:`ServerBusy` when the queue is full.
        """
        acquired = self._acquire(cancel)
        try:
            yield acquired
        finally:
            if acquired:
                with self._changed:
                    self._active -= 1
                    self._changed.notify_all()

    def _acquire(self, cancel: threading.Event | None) -> bool:
        with self._changed:
            if self.is_full():
                raise ServerBusy(
                    f"{self._active} answers are being written and {len(self._waiting)} "
                    "wait; the queue is full. Retry in a few seconds.")
            ticket = next(self._tickets)
            self._waiting.append(ticket)
            try:
                while self._waiting[0] != ticket or self._active >= self.limit:
                    if cancel is not None and cancel.is_set():
                        return False
                    self._changed.wait(0.25)  # wakes on release, or to look at cancel
                self._active += 1
                return True
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()  # the next in line may go now
