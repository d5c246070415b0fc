"""The shared answer slots: a limit, arrival order, a bounded queue, and cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from ai_digest_qa.concurrency import AnswerSlots, ServerBusy


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_no_more_holders_than_the_limit() -> None:
    slots = AnswerSlots(limit=2, max_waiting=10)
    peak, current, lock = [0], [0], threading.Lock()

    def work() -> None:
        with slots.hold() as held:
            assert held
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            time.sleep(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2 and slots.active == 0 and slots.waiting == 0


def test_waiters_go_in_arrival_order() -> None:
    slots = AnswerSlots(limit=1, max_waiting=10)
    order: list[int] = []
    release = threading.Event()

    def holder() -> None:
        with slots.hold():
            release.wait()

    def waiter(number: int) -> None:
        with slots.hold():
            order.append(number)

    first = threading.Thread(target=holder)
    first.start()
    _wait_for(lambda: slots.active == 1)
    waiters = []
    for number in range(5):
        waiters.append(threading.Thread(target=waiter, args=(number,)))
        waiters[-1].start()
        _wait_for(lambda n=number: slots.waiting == n + 1)  # arrived, in this order
    release.set()
    for thread in [first, *waiters]:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_a_full_queue_says_busy_and_a_cancelled_waiter_leaves_it() -> None:
    slots = AnswerSlots(limit=1, max_waiting=1)
    release, cancel = threading.Event(), threading.Event()
    outcome: list[bool] = []

    def holder() -> None:
        with slots.hold():
            release.wait()

    def waiter() -> None:
        with slots.hold(cancel) as held:
            outcome.append(held)

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    threads[0].start()
    _wait_for(lambda: slots.active == 1)
    threads[1].start()
    _wait_for(lambda: slots.waiting == 1)
    with pytest.raises(ServerBusy, match="queue is full"):
        with slots.hold():
            pass
    cancel.set()
    threads[1].join(timeout=5)
    assert outcome == [False] and slots.waiting == 0
    release.set()
    threads[0].join()
    with slots.hold() as held:  # free again
        assert held and slots.active == 1
    assert slots.active == 0


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        AnswerSlots(limit=0, max_waiting=1)
