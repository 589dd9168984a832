"""The broker's health as the worker's threads see it: an outage is logged once, not per call."""

from __future__ import annotations

import logging

logger = logging.getLogger("tinyq.worker")


class BrokerHealth:
    """Shared by the fetcher, housekeeper, mover and outbox. Racy on purpose: two threads
    failing at once may both log the outage, which is harmless."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error("Broker error, retrying with backoff: %s", exc,
                         exc_info=logger.isEnabledFor(logging.DEBUG))

    def ok(self) -> None:
        if self.down:
            logger.warning("Broker is reachable again, resuming")
            self.down = False
