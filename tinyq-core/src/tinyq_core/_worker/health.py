"""The broker's health as the worker's threads see it: an outage is logged once, not per call."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("tinyq.worker")


class BrokerHealth:
    """Shared by the fetcher, housekeeper, mover and outbox. Racy on purpose: two threads
    failing at once may both log the outage, which is harmless."""

    def __init__(self) -> None:
        self.down = False
        # Outcomes not reported yet (the outbox's count), named in the log: they are kept and
        # sent again, which an operator watching a full or failing broker wants to know.
        self.unreported: Callable[[], int] = lambda: 0

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            kept = self.unreported()
            logger.error("Broker error, retrying with backoff: %s%s", exc,
                         f" ({kept} job outcome(s) not reported yet, kept to send again)"
                         if kept else "",
                         exc_info=logger.isEnabledFor(logging.DEBUG))

    def ok(self) -> None:
        if self.down:
            logger.warning("Broker is reachable again, resuming")
            self.down = False
