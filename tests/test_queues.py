import threading
import time

import pytest

from live.queues import LatestQueue, QueueClosed


def test_full_queue_evicts_oldest_and_counts():
    q = LatestQueue("a->b", maxsize=1)
    for i in range(5):
        q.put(i)
    assert q.get(timeout=1) == 4
    assert q.dropped == 4
    assert len(q) == 0


def test_larger_queue_keeps_newest_in_order():
    q = LatestQueue("a->b", maxsize=3)
    for i in range(10):
        q.put(i)
    assert [q.get(timeout=1) for _ in range(3)] == [7, 8, 9]
    assert q.dropped == 7


def test_forced_put_neither_evicts_nor_waits():
    q = LatestQueue("a->b", maxsize=1, lossless=True)
    q.put("frame")
    q.put("END", force=True)  # would block (lossless) or evict "frame" (live) without force
    assert [q.get(timeout=1), q.get(timeout=1)] == ["frame", "END"]
    assert q.dropped == 0


def test_get_times_out_and_close_wakes_waiters():
    q = LatestQueue("a->b")
    with pytest.raises(TimeoutError):
        q.get(timeout=0.05)
    errors = []

    def waiter():
        try:
            q.get(timeout=10)
        except QueueClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    q.close()
    t.join(2)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(QueueClosed):
        q.put(1)


def test_concurrent_producers_and_consumers_account_for_every_item():
    q = LatestQueue("a->b", maxsize=2)
    producers, per_producer = 4, 2000
    received: list[list[tuple[int, int]]] = [[], []]

    def produce(pid):
        for i in range(per_producer):
            q.put((pid, i))

    def consume(slot):
        while True:
            try:
                received[slot].append(q.get(timeout=5))
            except QueueClosed:
                return

    consumers = [threading.Thread(target=consume, args=(s,)) for s in range(2)]
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in consumers + threads:
        t.start()
    for t in threads:
        t.join(10)
    while len(q):
        time.sleep(0.01)
    q.close()
    for t in consumers:
        t.join(10)
    got = received[0] + received[1]
    assert len(got) + q.dropped == producers * per_producer
    assert len(set(got)) == len(got)  # nothing delivered twice
    for slot in received:  # each consumer sees each producer's items in order
        for pid in range(producers):
            seq = [i for p, i in slot if p == pid]
            assert seq == sorted(seq)


def test_lossless_blocks_producer_and_drops_nothing():
    q = LatestQueue("a->b", maxsize=1, lossless=True)
    n = 500
    out = []

    def consume():
        for _ in range(n):
            out.append(q.get(timeout=5))
            if len(out) % 100 == 0:
                time.sleep(0.01)  # a slow consumer must slow the producer, not lose items

    t = threading.Thread(target=consume)
    t.start()
    for i in range(n):
        q.put(i)
    t.join(10)
    assert out == list(range(n))
    assert q.dropped == 0


def test_lossless_put_is_released_by_close():
    q = LatestQueue("a->b", maxsize=1, lossless=True)
    q.put(0)
    errors = []

    def produce():
        try:
            q.put(1)
        except QueueClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.05)
    assert t.is_alive()  # waiting for room
    q.close()
    t.join(2)
    assert not t.is_alive() and errors
