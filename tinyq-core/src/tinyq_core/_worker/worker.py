"""The worker's front: configuration, wiring of its parts, ``run`` and ``stop``.

Its parts, each in its own module (see docs/architecture.md):

* the fetcher (the thread that calls ``run``) reserves jobs and hands them to the executor;
* the executor's threads run jobs through the job runner, which puts each settlement (result
  plus ack, retry, or dead letter) in the outbox; the fetcher sends the outbox with its next
  read (group commit), or a finishing job does while the fetcher blocks on an empty queue;
* the housekeeper renews leases, recovers expired ones and enforces timeouts; the mover moves
  delayed jobs when due;
* held jobs (with the capacity) and the shutdown ladder share the worker's one Condition.

A job is acknowledged only after its result was stored. Nothing is acknowledged before it ran:
a crash at any point leaves the job leased, and the broker delivers it again after the lease.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from .._control_interfaces import CancelRequests
from .._errors import BrokerError
from .._interfaces import Broker, WorkerRegistry
from .._lifecycle import NO_HOOKS
from .._progress import ProgressStore
from .._runtime_interfaces import Executor
from .aloop import DEFAULT_ASYNC_CONCURRENCY, SplitExecutor, event_loop_for
from .cancels import CancelWatcher
from .expiry import broker_clock
from .fetcher import Fetcher
from .followups import FollowUps
from .health import BrokerHealth
from .heartbeat import Heartbeat
from .held import HeldJobs, Work
from .housekeeping import Housekeeper, Mover
from .ladder import ShutdownLadder, Stage
from .leases import LostLeases
from .limits import Limiter, limiter_for
from .outbox import Outbox, Sender
from .policy import admit
from .runner import JobRunner
from .scheduler import scheduler_of
from .sift import Sifter
from .threads import ThreadGroup

if TYPE_CHECKING:
    from .._app import Application

logger = logging.getLogger("tinyq.worker")

SHUTDOWN_POLL = 1.0  # seconds between looks at held jobs during a warm shutdown, at most
DEFAULT_HEARTBEAT_INTERVAL = 5.0  # seconds between records in the worker registry


class Worker:
    """Runs jobs from ``queues`` (in priority order) with ``concurrency`` slots. A worker
    runs once: make another with ``app.worker()`` to run again. When the broker keeps a
    worker registry, the worker records itself there every ``heartbeat_interval`` seconds
    (its record expires after three intervals without one)."""

    def __init__(
        self,
        app: Application,
        *,
        concurrency: int = 8,
        queues: Sequence[str] | None = None,
        prefetch: int | None = None,
        shutdown_timeout: float | None = None,
        executor: str = "thread",
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        scheduler: bool = True,
        async_concurrency: int = DEFAULT_ASYNC_CONCURRENCY,
    ) -> None:
        if concurrency < 1 or async_concurrency < 1:
            raise ValueError("concurrency and async_concurrency must be at least 1")
        self.async_concurrency = async_concurrency  # async jobs at a time (aloop.py)
        if not heartbeat_interval > 0:
            raise ValueError("heartbeat_interval must be more than 0 seconds")
        self.heartbeat_interval = heartbeat_interval
        self.scheduler = scheduler  # run the app's schedules (see scheduler.py)
        self.app = app
        self.concurrency = concurrency
        self.queues = list(queues or ["default"])
        self.prefetch = prefetch  # None: adaptive (see held.adaptive_prefetch)
        self.shutdown_timeout = shutdown_timeout
        self.executor: Executor[Work] = app.registry.executor(executor)
        self._cond = threading.Condition()
        self._ladder = ShutdownLadder(self._cond)
        self._held = HeldJobs(self._cond, concurrency, prefetch, self.executor.inline)
        self._outbox: Outbox | None = None  # made by run()
        self._hooks = NO_HOOKS  # the application's, from run()
        self._limiter: Limiter | None = None  # from run(), when the app has limited tasks
        self.heartbeat: Heartbeat | None = None  # made by run() when the broker has a registry
        self._jobs: Executor[Work] = self.executor  # with the event loop's, from run()

    @property
    def processed(self) -> int:
        """Jobs run to an outcome so far (a retry and a timeout count as a run)."""
        return 0 if self._outbox is None else self._outbox.processed

    def stop(self, cold: bool = False) -> None:
        """Ask the worker to stop: warm (finish running jobs) or cold (give them back)."""
        self._ladder.climb(Stage.COLD if cold else Stage.WARM)

    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM: warm shutdown. The second: cold shutdown."""

        def handle(signum: int, frame: FrameType | None) -> None:
            if self._ladder.next_step() is Stage.WARM:
                logger.info("Received stop signal, warm shutdown...")
            else:
                logger.info("Received second stop signal, cold shutdown...")

        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)

    def run(self, burst: bool = False) -> int:
        """Work until stopped (or, with ``burst``, until nothing is ready or running).

        Returns 0 after a warm stop or an emptied burst, 1 after a cold stop."""
        if self._outbox is not None:
            raise RuntimeError("this Worker has run already: a worker runs once; "
                               "make another with app.worker()")
        app = self.app
        broker, codec = app.broker, app.codec
        if codec.serializer.name == "cloudpickle" and not codec.signs:
            logger.warning(
                "SECURITY: serializer 'cloudpickle' without a secret_key: anyone who can write "
                "to the broker can run code on this worker. Set Application(secret_key=...) "
                "or use the json serializer."
            )
        try:  # a server set up to lose jobs stops the worker here, before it takes any
            broker.check_server()
        except BrokerError as exc:  # unreachable now: the broker checks at its first use
            logger.debug("Broker not checked at start: %s", exc)
        health = BrokerHealth()
        leases = LostLeases(broker.visibility_timeout)
        sender = Sender(broker, app.results, app.result_backend is None, app.result_ttl,
                        self.queues, leases)
        sender.follow_ups = FollowUps(app._producer, app.result_ttl)
        outbox = self._outbox = Outbox(self._cond, self._held, sender, health,
                                       Sifter(broker, sender, codec))
        health.unreported = outbox.pending
        deadline_set = threading.Event()
        admission = functools.partial(admit, codec=codec, tasks=app.tasks,
                                      max_message_size=app.max_message_size)
        hooks = self._hooks = app.registry.hooks
        limiter = self._limiter = limiter_for(app, broker, codec, self._held, outbox)
        sender.before_send = None if limiter is None else limiter.free_finished
        keeper = Housekeeper(broker, self.queues, self._held, outbox, codec, self._ladder,
                             health, deadline_set, leases, hooks, limiter)
        cancels = CancelWatcher(broker, self._held, outbox, codec, self._ladder, health,
                                deadline_set, hooks) if isinstance(broker, CancelRequests) else None
        progress = ProgressStore(codec, app.results, app.result_ttl)
        runner = JobRunner(self._held, outbox, codec, deadline_set, app.max_result_size, hooks,
                           progress, cancels, broker_clock(broker), limiter, app.results)
        aloop = event_loop_for(app.tasks, self._held, self.executor, self.async_concurrency,
                               runner, outbox, hooks, progress)
        jobs = self._jobs = self.executor if aloop is None else SplitExecutor(self.executor,
                                                                              aloop)
        fetcher = Fetcher(broker, self.queues, self._cond, self._held, outbox, self._ladder,
                          health, jobs, admission, leases,
                          app.results if codec.signs else None, hooks, limiter)
        self.executor.start(self.concurrency, runner.run)
        with ThreadGroup() as helpers:
            try:
                helpers.start(keeper.run, "Housekeeper")
                if aloop is not None:
                    helpers.start(aloop.run, "EventLoop")
                helpers.start(Mover(broker, self.queues, self._ladder, health).run, "Mover")
                if isinstance(broker, WorkerRegistry):
                    self.heartbeat = Heartbeat(broker, self.heartbeat_interval, self.queues,
                                               self.concurrency, self._held, outbox,
                                               self._ladder)
                    helpers.start(self.heartbeat.run, "Heartbeat")
                if self.scheduler and app.schedule_registry:
                    helpers.start(scheduler_of(app, self._ladder), "Scheduler")
                if cancels is not None:
                    helpers.start(cancels.run, "CancelWatcher")
                hooks.call("tinyq_worker_started", worker=self)
                fetcher.run(burst)
                return self._shut_down(broker, outbox)
            finally:
                self._ladder.climb(Stage.DONE)
                deadline_set.set()  # the housekeeper sleeps on it
                _wake_mover(broker, self.queues)
                if aloop is not None:
                    aloop.stop()

    def _shut_down(self, broker: Broker, outbox: Outbox) -> int:
        """Give back unstarted jobs, let running ones finish (warm) or give them back (cold)."""
        self._hooks.call("tinyq_worker_stopping", worker=self, cold=self._ladder.cold)
        outbox.fetcher_leaving()
        outbox.flush_with_retries(give_up=self._ladder.cold)
        for work in self._jobs.take_pending():
            self._give_back(broker, work)
        deadline = None if self.shutdown_timeout is None else (
            time.monotonic() + self.shutdown_timeout)
        with self._cond:
            while self._held.count() and not self._ladder.cold:
                remaining = SHUTDOWN_POLL if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning("Shutdown timeout reached, cold shutdown...")
                    self._ladder.climb(Stage.COLD)
                    break
                self._cond.wait(min(remaining, SHUTDOWN_POLL))
        cold = self._ladder.cold
        if cold:
            for work in self._held.snapshot()[1]:
                self._give_back(broker, work)
        outbox.flush_with_retries(give_up=cold)
        # Threads stuck in a timed-out job (in C code) cannot be joined: do not wait for them.
        zombies = self._held.snapshot()[2]
        self._jobs.shutdown(wait=not cold and not zombies)
        logger.info("Exit workers.")
        return 1 if cold else 0

    def _give_back(self, broker: Broker, work: Work) -> None:
        if self._limiter is not None:  # its concurrency slot, if any, goes with it
            self._limiter.release(work, at_once=True)
        if not self._held.take_back(work):
            return
        if self._hooks.given_back:
            self._hooks.call("tinyq_job_given_back", job=work.job, started=work.started is not None)
        try:
            broker.nack(work.delivery)
        except Exception as exc:  # its lease expires and the broker delivers it again
            logger.error("Could not give back %r (it will be redelivered after its lease): %s",
                         work.job, exc)


def _wake_mover(broker: Broker, queues: Sequence[str]) -> None:
    """End the mover's wait for delayed jobs now: the worker exits at once, not up to a
    second later (the longest the mover waits)."""
    try:
        broker.wake_delayed_waiters(queues)
    except Exception as exc:  # it ends when its wait does
        logger.debug("Could not wake the mover: %s", exc)
