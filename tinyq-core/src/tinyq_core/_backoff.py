"""One exponential backoff for everything that waits longer after each failure: job retries,
the worker's broker outages, the CLI's start-up check and the supervisor's restarts."""

from __future__ import annotations

import random

import attrs


@attrs.frozen
class Backoff:
    """``base * 2**attempt`` seconds (attempt from 0), at most ``cap``; with ``jitter`` (a
    fraction, e.g. 0.2 for +-20 %) spread at random so that many waiters do not retry in
    step. The cap holds after the jitter too."""

    base: float
    cap: float
    jitter: float = 0.0

    def delay(self, attempt: int) -> float:
        # The exponent is bounded: 2**1100 overflows a float long after the cap applies.
        seconds = self.base * 2.0 ** min(max(attempt, 0), 64)
        if self.jitter:
            seconds *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return float(min(self.cap, seconds))
