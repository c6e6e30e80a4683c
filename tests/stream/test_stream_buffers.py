"""The capture hand-over: latest-frame-wins drops instead of queueing, FIFO loses nothing."""

from __future__ import annotations

import threading
import time

import pytest

from toolkit.stream.buffers import CLOSED, FifoBuffer, LatestFrameBuffer, make_buffer


def test_latest_frame_wins_keeps_the_newest_and_counts_the_rest():
    buffer = LatestFrameBuffer(1)
    for item in range(5):
        assert buffer.put(item)
    assert buffer.get(0) == 4
    assert buffer.dropped == 4
    assert buffer.high_water == 1


def test_latest_frame_wins_with_a_fast_producer_thread_and_a_slow_consumer():
    # The producer runs to completion while the consumer holds back: a growing queue would
    # hold everything; the latest-frame buffer holds one frame and counts the others as dropped.
    buffer = LatestFrameBuffer(1)
    total = 200
    producer = threading.Thread(target=lambda: [buffer.put(i) for i in range(total)] and buffer.close())
    first = []
    consumer_started = threading.Event()

    def consume_slowly():
        first.append(buffer.get(5.0))
        consumer_started.set()
        producer.join()
        while True:
            item = buffer.get(5.0)
            if item is CLOSED:
                return
            first.append(item)

    consumer = threading.Thread(target=consume_slowly)
    consumer.start()
    producer.start()
    consumer.join(10)
    assert not consumer.is_alive()
    taken = len(first)
    assert buffer.high_water == 1
    assert buffer.put_count == total
    assert taken + buffer.dropped == total
    assert taken <= 2 and buffer.dropped >= total - 2
    assert first[-1] == total - 1  # the newest frame is the one that survives


def test_fifo_hands_over_every_item_in_order_to_a_slow_consumer():
    buffer = FifoBuffer(2)
    total = 30
    producer = threading.Thread(target=lambda: [buffer.put(i) for i in range(total)] and buffer.close())
    producer.start()
    received = []
    while True:
        item = buffer.get(5.0)
        if item is CLOSED:
            break
        received.append(item)
        time.sleep(0.001)  # slower than the producer: the producer must wait, not drop
    producer.join(5)
    assert received == list(range(total))
    assert buffer.dropped == 0
    assert buffer.high_water <= 2


def test_closing_wakes_a_blocked_producer_and_ends_the_consumer():
    buffer = FifoBuffer(1)
    buffer.put("a")
    results = []
    producer = threading.Thread(target=lambda: results.append(buffer.put("b")))
    producer.start()
    producer.join(0.05)
    assert producer.is_alive()  # blocked: the buffer is full
    buffer.close()
    producer.join(5)
    assert results == [False]
    assert buffer.get(0) == "a"
    assert buffer.get(0) is CLOSED


def test_get_times_out_with_none_and_capacity_is_checked():
    assert make_buffer(True).get(0.01) is None
    assert isinstance(make_buffer(False, 3), FifoBuffer)
    with pytest.raises(ValueError):
        LatestFrameBuffer(0)
