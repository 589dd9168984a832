"""The outbox: settlements waiting to be sent, who sends them, and how.

Group commit: while the fetcher runs, finishing jobs only append to the outbox and the
fetcher sends it all with its next read, so under load many outcomes share one round trip.
While the fetcher blocks on an empty queue (or after it left), a finishing job sends the
outbox itself, so an idle worker reports at once. One thread sends at a time; whoever sends
also takes what others added meanwhile. A batch that fails to send goes back to the front,
less what a sift (sift.py) got through: one poison outcome must not wedge all the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import attrs

from .._backoff import Backoff
from .._interfaces import Broker, ResultBackend
from .._types import Delivery, SettleRequest
from .followups import FollowUps
from .health import BrokerHealth
from .held import HeldJobs, Work
from .leases import LostLeases
from .policy import AckJob, DeadLetterJob, RetryJob, Settlement
from .sift import Sifter
from .unique import drop_locks, keep_locks

FLUSH_ATTEMPTS = 5  # at shutdown, before leaving outcomes to lease expiry
FLUSH_BACKOFF = Backoff(base=0.2, cap=1.0)


class Sender:
    """Tells the broker a batch of settlements, and reserves the next jobs in the same round
    trip where it can. ``own_results``: results go through ``settle_and_reserve`` (they are
    the broker's own backend); otherwise they are stored in ``results`` first."""

    def __init__(
        self,
        broker: Broker,
        results: ResultBackend,
        own_results: bool,
        result_ttl: float,
        queues: Sequence[str],
        leases: LostLeases,
    ) -> None:
        self.broker, self.results, self.own_results = broker, results, own_results
        self.result_ttl, self.queues = result_ttl, list(queues)
        self.leases = leases
        self.before_send: Callable[[], None] | None = None  # frees finished jobs' slots
        self.follow_ups: FollowUps | None = None  # a workflow's next steps (followups.py)

    def __call__(self, batch: list[Settlement], count: int, timeout: float) -> list[Delivery]:
        if self.before_send is not None:
            self.before_send()
        keep_locks(self.broker, batch)  # before the acks: the lock never frees in between
        sending = batch
        if self.follow_ups is not None:
            stored = self.follow_ups.take(batch)
            if stored:  # those results went in with their chord reports: not again
                sending = [attrs.evolve(s, result=None)  # type: ignore[arg-type]
                           if s.delivery.receipt in stored else s for s in batch]
        deliveries = self._send(sending, count, timeout)
        self.leases.settled([s.delivery for s in batch])
        drop_locks(self.broker, batch)
        return deliveries

    def _send(self, batch: list[Settlement], count: int, timeout: float) -> list[Delivery]:
        broker = self.broker
        acks = [s for s in batch if type(s) is AckJob]
        if len(acks) < len(batch):  # the rare paths: retries and dead letters
            if not self.own_results:  # another backend: the failures first, on their own
                failed = [s.result for s in batch
                          if type(s) is DeadLetterJob and s.result is not None]
                if failed:
                    self.results.store(failed, self.result_ttl)
            for s in batch:
                if type(s) is RetryJob:
                    broker.nack(s.delivery, s.delay, s.body)
                elif type(s) is DeadLetterJob and not s.verified:
                    broker.dead_letter(s.delivery, s.reason, s.error, verified=False)
                elif type(s) is DeadLetterJob and self.own_results:
                    # The failure and the dead letter in one step: a producer that saw
                    # JobFailed finds the dead letter (to requeue it, say).
                    broker.dead_letter(s.delivery, s.reason, s.error, result=s.result,
                                       result_ttl=self.result_ttl)
                elif type(s) is DeadLetterJob:
                    broker.dead_letter(s.delivery, s.reason, s.error)
        if count <= 0 and not acks:
            return []
        results = [s.result for s in acks if s.result is not None]
        if results and not self.own_results:
            self.results.store(results, self.result_ttl)
            results = []
        return broker.settle_and_reserve(SettleRequest(
            results=results, result_ttl=self.result_ttl, acks=[s.delivery for s in acks],
            queues=self.queues, count=count, timeout=timeout, on_lost=self.leases.lost,
        ))


class Outbox:
    def __init__(
        self,
        cond: threading.Condition,
        held: HeldJobs,
        send: Sender,
        health: BrokerHealth,
        sift: Sifter | None = None,
    ) -> None:
        self._cond = cond
        self._held = held
        self._send = send
        self._health = health
        self._sift = sift  # None: a batch that fails is only kept, whole
        self._items: list[Settlement] = []
        self._sifting: list[list[Settlement]] = []  # batches being sifted: still unsent
        self._in_flight: list[list[Settlement]] = []  # batches being sent: not confirmed yet
        self._flush_lock = threading.Lock()
        # True while the fetcher will send the outbox soon: it runs, and is not in a
        # blocking read. Finishing jobs then leave their settlements to it.
        self._fetcher_sends = False
        self._fetcher_gone = False
        self.processed = 0  # jobs run to an outcome (retries and timeouts included)
        self.failed = 0  # of those, the ones that did not succeed (retried or dead-lettered)
        self.cancelled = 0  # of those, the ones cancelled (before they started, or running)
        self.expired = 0  # of those, the ones that expired before they could start

    def put(self, settlement: Settlement, work: Work | None = None, flush: bool = True) -> bool:
        """Add a settlement; ``work``, a held job it settles, is released in the same step
        (and counted as processed). Sends at once unless the fetcher will; with ``flush``
        False it does not, and returns True when the caller must have it sent (flush)."""
        with self._cond:
            if work is not None:
                work.settled = True
                self._held.release(work)
                self.processed += 1
                if type(settlement) is not AckJob:
                    self.failed += 1
                elif settlement.kind == "cancelled":
                    self.cancelled += 1
                elif settlement.kind == "expired":
                    self.expired += 1
            self._items.append(settlement)
            self._cond.notify_all()
            fetcher_sends = self._fetcher_sends
        if not fetcher_sends and flush:
            self.flush_quietly()
        return not fetcher_sends and not flush

    def with_next_send(self, action: Callable[[], None]) -> bool:
        """When the fetcher sends soon: run ``action`` (no I/O) under the lock, so that the
        send's ``before_send`` sees what it did, and return True. Else False (nothing run)."""
        with self._cond:
            if self._fetcher_sends:
                action()
            return self._fetcher_sends

    def pending(self) -> int:
        """Settlements waiting to be sent (not those a thread is sending or sifting now)."""
        with self._cond:
            return len(self._items)

    def deliveries(self) -> list[Delivery]:
        """Deliveries whose settlement is not sent yet: still leased, so still renewed."""
        with self._cond:
            return [s.delivery for s in self._items] + [
                s.delivery for batch in (*self._sifting, *self._in_flight) for s in batch]

    def _failed(self, batch: list[Settlement], exc: BaseException) -> bool:
        """``batch`` failed to send: sift it (see sift.py) and keep what is still unsent, at
        the front. True when the sift explains the failure: poison settlements, replaced,
        and nothing kept."""
        if self._sift is None or not isinstance(exc, Exception):
            with self._cond:
                self._landed(batch)
                self._items[:0] = batch
            return False
        with self._cond:
            self._landed(batch)
            self._sifting.append(batch)
        kept = batch
        try:
            sifted = self._sift(batch)
            kept = sifted.kept
            return sifted.replaced > 0 and not kept
        finally:
            with self._cond:
                self._sifting = [b for b in self._sifting if b is not batch]
                self._items[:0] = kept

    def send_and_reserve(self, count: int, timeout: float) -> list[Delivery]:
        """The fetcher's round trip: send everything, reserve up to ``count`` jobs. While it
        blocks (``timeout`` > 0) finishing jobs send for themselves."""
        with self._cond:
            batch, self._items = self._items, []
            self._fetcher_sends = timeout <= 0
            self._in_flight.append(batch)
        try:
            return self._send(batch, count, timeout)
        except BaseException as exc:
            if not self._failed(batch, exc):
                raise
            return []  # the poison is out; the next round reserves as usual
        finally:
            with self._cond:
                self._fetcher_sends = not self._fetcher_gone
                self._landed(batch)

    def _landed(self, batch: list[Settlement]) -> None:
        """``batch`` is sent, or moves back among the unsent ones (under the condition)."""
        self._in_flight = [b for b in self._in_flight if b is not batch]

    def fetcher_leaving(self) -> None:
        """From now on finishing jobs send for themselves (the fetcher stopped reading)."""
        with self._cond:
            self._fetcher_gone = True
            self._fetcher_sends = False

    def flush(self) -> None:
        """Send every pending settlement; returns at once if another thread is sending
        (that thread takes what is added meanwhile too)."""
        while True:
            if not self._flush_lock.acquire(blocking=False):
                return
            try:
                while True:
                    with self._cond:
                        batch, self._items = self._items, []
                        if batch:
                            self._in_flight.append(batch)
                    if not batch:
                        break
                    try:
                        self._send(batch, 0, 0)
                    except BaseException as exc:
                        if not self._failed(batch, exc):  # kept: sent on the next flush
                            raise
                    finally:
                        with self._cond:
                            self._landed(batch)
            finally:
                self._flush_lock.release()
            with self._cond:
                if not self._items:
                    return

    def flush_quietly(self) -> None:
        """Flush from a job or helper thread: on a broker error the settlements stay, and the
        fetcher (or the shutdown) sends them again."""
        try:
            self.flush()
        except Exception as exc:
            self._health.failed(exc)

    def flush_with_retries(self, give_up: bool = False) -> None:
        """At shutdown: a few tries, then the settlements are left to lease expiry (the jobs
        run again). ``give_up``: one try only (a cold stop)."""
        attempts = 1 if give_up else FLUSH_ATTEMPTS
        for attempt in range(attempts):
            try:
                self.flush()
                return
            except Exception as exc:
                self._health.failed(exc)
                if attempt + 1 < attempts:
                    time.sleep(FLUSH_BACKOFF.delay(attempt))
