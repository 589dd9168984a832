"""Every exception tinyq raises, in one tree rooted at :class:`TinyqError`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._handle import JobHandle


class TinyqError(Exception):
    """Base class of every error tinyq raises."""


class ConfigurationError(TinyqError):
    """The application, a URI or a plugin is set up wrongly; the message says how to fix it."""


class PluginError(ConfigurationError):
    """A plugin is missing, broken, or claims a name another plugin already claimed."""


class DuplicateTaskError(ConfigurationError):
    """Two tasks were registered under one name."""


class UnknownTaskError(TinyqError):
    """A task name that no registered task has."""


class SerializationError(TinyqError):
    """A value the configured serializer cannot encode or decode."""


class MessageTooLarge(SerializationError):
    """An encoded job is larger than the application's ``max_message_size``."""


class BadMessage(TinyqError):
    """A message that cannot be turned into a job: undecodable, unsigned, tampered or malformed.

    ``reason`` is the short, readable cause stored with the dead letter.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerError(TinyqError):
    """The broker failed an operation."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached (after a short, bounded retry)."""


class EnqueueError(BrokerError):
    """Some or all jobs of one ``delay()``/``apply_async()``/``map()`` were refused (Redis out
    of memory, for one); the message says how many went in and why the rest did not.

    ``enqueued`` holds the handles of the jobs that went in, ``not_enqueued`` those of the
    others (their job ids are already chosen), both in the order of the call, and
    ``enqueued_ids`` the ids that went in. :meth:`retry` enqueues the others again under
    their ids; a job id still queued is never added twice, so retrying is safe.

    A broker raises it itself with ``enqueued_ids`` only (the ids of the messages that went
    in, exactly); the producer turns that into the error above.
    """

    def __init__(
        self,
        message: str,
        *,
        enqueued_ids: Sequence[str] = (),
        enqueued: Sequence[JobHandle[Any]] = (),
        not_enqueued: Sequence[JobHandle[Any]] = (),
        retry: Callable[[], list[JobHandle[Any]]] | None = None,
        aretry: Callable[[], Awaitable[list[JobHandle[Any]]]] | None = None,
    ) -> None:
        super().__init__(message)
        self.enqueued_ids = list(enqueued_ids) if enqueued_ids else [h.id for h in enqueued]
        self.enqueued = list(enqueued)
        self.not_enqueued = list(not_enqueued)
        self._retry = retry
        self._aretry = aretry  # set when raised by the awaitable API (docs/asyncio.md)

    def retry(self) -> list[JobHandle[Any]]:
        """Enqueue the jobs that did not go in, under the same ids, and return the handles of
        every job of the call, in its order. Raises EnqueueError again (with its own
        ``retry``) when they are refused again."""
        if self._retry is None:
            raise TypeError("only an EnqueueError raised by a task's delay/apply_async/map "
                            "can retry: call the broker's enqueue again yourself")
        return self._retry()

    async def aretry(self) -> list[JobHandle[Any]]:
        """:meth:`retry` without blocking the event loop, for an error of ``adelay()``,
        ``aapply_async()`` or ``amap()`` (``retry()`` works there too, blocking)."""
        if self._aretry is None:
            raise TypeError("only an EnqueueError raised by adelay/aapply_async/amap can "
                            "aretry(); call retry() for one raised by the blocking API")
        return await self._aretry()


class JobFailed(TinyqError):
    """The job ended in failure: it raised and had no retries left, or was dead-lettered.

    ``str()`` gives the remote exception's type and message, ``exc_type`` the type's name and
    ``traceback`` the remote traceback's text (empty when the job never ran).
    """

    def __init__(self, message: str, *, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.traceback = traceback


class JobCancelled(JobFailed):
    """The job was cancelled (``h.cancel()``, ``app.cancel()``): removed before it ran, or
    stopped while it ran. A :class:`JobFailed`, so ``except JobFailed`` catches it too."""


class JobExpired(JobFailed):
    """The job reached a worker after its ``expires`` time and never ran. A
    :class:`JobFailed`, so ``except JobFailed`` catches it too."""


class JobTimeout(TinyqError):
    """Raised inside a task that ran longer than its ``timeout``."""


class Cancelled(TinyqError):
    """Raised inside a cancelled task: by ``current_job().check_cancelled()``, or into a sync
    job's thread once the ``grace`` given to ``cancel()`` ran out. Let it propagate (a task
    may also just return); the job is then acknowledged as cancelled, never retried."""


class Retry(Exception):
    """Raise inside a task to run it again later, counting against ``max_retries``.

    ``delay`` overrides the task's backoff for this retry (seconds).
    """

    def __init__(self, delay: float | None = None) -> None:
        super().__init__(f"retry requested (delay={delay})")
        self.delay = delay


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"``, even for an exception whose ``__str__`` raises."""
    try:
        text = str(exc)
    except BaseException as inner:  # even SystemExit: a job must not take its thread down
        text = f"<str() of the exception failed: {type(inner).__name__}>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
