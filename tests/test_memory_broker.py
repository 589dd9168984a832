"""The memory broker beyond the broker contract: waking the blocked reserves."""

from __future__ import annotations

import threading
import time

from tinyq_core import Delivery
from tinyq_memory import MemoryBroker


def test_interrupt_reserves_ends_a_blocking_reserve_at_once() -> None:
    broker = MemoryBroker()
    got: list[list[Delivery]] = []
    reader = threading.Thread(target=lambda: got.append(broker.reserve(["default"], 1, 30)))
    reader.start()
    time.sleep(0.2)  # blocked on the empty queue by now
    interrupted = time.monotonic()
    broker.interrupt_reserves()
    reader.join(5)
    assert not reader.is_alive(), "the reserve still blocks"
    assert got == [[]]
    assert time.monotonic() - interrupted < 1
    # Only the reserves blocked at the time: a later one waits for its timeout again.
    started = time.monotonic()
    assert broker.reserve(["default"], 1, 0.2) == []
    assert time.monotonic() - started >= 0.19
