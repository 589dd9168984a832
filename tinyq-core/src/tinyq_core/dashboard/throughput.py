"""Throughput over the last minutes, from the worker registry: each sample adds up how many
jobs every live worker finished since the previous sample. Kept in memory by the dashboard
process and sampled when a page is served (at most every ``min_interval`` seconds), so the
chart covers the time someone was looking."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence

from .._types import WorkerInfo


class Throughput:
    def __init__(self, window: float = 600.0, min_interval: float = 2.0) -> None:
        self.window = window
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # worker id -> jobs it had finished at the last sample
        self._samples: collections.deque[tuple[float, int]] = collections.deque()  # (t, jobs)
        self._last = 0.0

    def sample(self, workers: Sequence[WorkerInfo], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if now - self._last < self.min_interval:
                return
            # A worker seen for the first time counts from now (its past is not this window's);
            # one gone from the registry simply stops adding.
            done = sum(max(0, w.processed - self._seen[w.id]) for w in workers
                       if w.id in self._seen)
            self._seen = {w.id: w.processed for w in workers}
            if self._last:
                self._samples.append((now, done))
            self._last = now
            while self._samples and self._samples[0][0] < now - self.window:
                self._samples.popleft()

    def per_minute(self, now: float | None = None, buckets: int = 10) -> list[int]:
        """Jobs finished in each of the last ``buckets`` minutes, oldest first."""
        now = time.time() if now is None else now
        counts = [0] * buckets
        with self._lock:
            for when, done in self._samples:
                back = int((now - when) // 60)
                if 0 <= back < buckets:
                    counts[buckets - 1 - back] += done
        return counts


def chart_points(values: Sequence[int], width: int = 300, height: int = 60) -> str:
    """An SVG polyline's ``points`` for ``values``, scaled to the box (the top is the max)."""
    top = max(max(values, default=0), 1)
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - v * height / top:.1f}"
                    for i, v in enumerate(values))
