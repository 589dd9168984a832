"""Sifting a batch of settlements the broker refused, so that one poison outcome fails alone.

A settlement the broker can never take (a result over Redis' ``proto-max-bulk-len``: Redis
drops the connection, and the whole pipeline that carries it fails, every time) would ride in
every later batch and wedge the worker's reports. An outage looks the same from one failed
call, so the batch is sifted only while the broker still answers a ping: it is sent again in
halves, down to the settlements that fail alone. Such a settlement is tried once more; when it
fails again, the broker still answers, and a small stand-in (its job failed, saying why) goes
through, the stand-in replaces it. When the broker refuses the stand-in too (it refuses
everything, out of memory say), or stops answering, the sift stops and the rest is kept to be
sent again after the outage backoff: an outage never dead-letters a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from .._codec import Codec
from .._interfaces import Broker
from .._types import Delivery
from .policy import Settlement, unsendable

logger = logging.getLogger("tinyq.worker")

Send = Callable[[list[Settlement], int, float], list[Delivery]]


@attrs.frozen
class Sifted:
    """What a sift left: ``kept``, the settlements still unsent (to send again later), and
    ``replaced``, how many failed alone and were sent as failures instead."""

    kept: list[Settlement]
    replaced: int = 0


class Sifter:
    """``sifter(batch)`` after ``batch`` failed to send; ``send`` is the outbox's sender."""

    def __init__(self, broker: Broker, send: Send, codec: Codec) -> None:
        self._broker, self._send, self._codec = broker, send, codec

    def __call__(self, batch: list[Settlement]) -> Sifted:
        if not batch or not self._answers():
            return Sifted(batch)
        replaced = 0
        failed = [batch]  # parts that failed to send, to split
        while failed:
            part = failed.pop()
            if len(part) > 1:
                half = len(part) // 2
                for piece in (part[:half], part[half:]):
                    if self._sent(piece) is not None:
                        failed.append(piece)
                continue
            outcome = self._alone(part[0])
            if outcome is None:
                # The broker stopped answering, or refuses even a small failure: not this
                # settlement's fault. Keep the rest for the outage backoff.
                return Sifted([*part, *(s for p in failed for s in p)], replaced)
            replaced += outcome
        return Sifted([], replaced)

    def _answers(self) -> bool:
        try:
            self._broker.ping()
        except Exception:
            return False
        return True

    def _sent(self, part: list[Settlement]) -> Exception | None:
        """None once ``part`` went through, else the error."""
        try:
            self._send(part, 0, 0)
        except Exception as exc:
            return exc
        return None

    def _alone(self, settlement: Settlement) -> int | None:
        """A settlement that failed alone: 0 when it goes through now, 1 when its stand-in
        does instead, None when neither (kept)."""
        # Once more first: a connection that broke by chance proves nothing.
        error = self._sent([settlement])
        if error is None:
            return 0
        if not self._answers():
            return None
        stand_in = unsendable(settlement, self._codec, error)
        if self._sent([stand_in]) is not None:
            return None
        logger.error("Job %s of queue %r: its outcome could not be sent, although the broker "
                     "answers and takes a smaller one; failed and dead-lettered instead: %s",
                     settlement.delivery.id, settlement.delivery.queue, stand_in.reason)
        return 1
