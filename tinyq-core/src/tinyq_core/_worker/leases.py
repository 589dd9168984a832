"""Leases the worker lost. A lease expires when the worker does not renew it within the
visibility timeout: its process stalled (a job holding the GIL in one long C call, such as a
catastrophic regex, stops every thread, the lease-renewing housekeeper included; so does
SIGSTOP or a swapped-out host). The broker then hands the job out again, so it may run twice.
The worker cannot prevent that from inside a stalled process; it warns, once per delivery,
when the broker says so (a renewal or an ack that found the lease gone)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from .._types import Delivery

logger = logging.getLogger("tinyq.worker")


class LostLeases:
    """When each held delivery was reserved, to say how long a lost one was held."""

    def __init__(self, visibility_timeout: float) -> None:
        self._visibility = visibility_timeout
        self._lock = threading.Lock()
        self._since: dict[Any, float] = {}  # receipt -> monotonic time reserved
        self._warned: set[Any] = set()

    def reserved(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        now = time.monotonic()
        with self._lock:
            for delivery in deliveries:
                self._since[delivery.receipt] = now

    def settled(self, deliveries: Sequence[Delivery]) -> None:
        """The worker is done with these: forget them."""
        with self._lock:
            for delivery in deliveries:
                self._since.pop(delivery.receipt, None)
                self._warned.discard(delivery.receipt)

    def lost(self, deliveries: Sequence[Delivery]) -> None:
        """The broker says these leases are gone: warn once for each."""
        now = time.monotonic()
        with self._lock:
            fresh = [(d, now - self._since.get(d.receipt, now)) for d in deliveries
                     if d.receipt not in self._warned]
            self._warned.update(d.receipt for d, _ in fresh)
        for delivery, held in fresh:
            logger.warning(
                "Worker lost the lease of job %s (queue %r) after holding it %.1f s: it was not "
                "renewed within the visibility timeout (%g s) because this worker stalled (a "
                "job holding the GIL, a paused process), and the job was handed out again: it "
                "may run twice.", delivery.id, delivery.queue, held, self._visibility)
