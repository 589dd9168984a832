"""Calling the job lifecycle hooks (specified in _hooks.py) of an application's plugins.

tinyq calls each implementation itself instead of through pluggy's hook caller, for two
reasons. Isolation: an implementation that raises is logged (once per hook and plugin, with
the plugin's name) and the next one still runs; the job's outcome never depends on a plugin.
Cost: the implementations of each hook are looked up once, so a hook nobody implements costs
one truth test of an empty tuple per call (see benchmarks/hooks_overhead.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

import pluggy

from ._errors import Cancelled, JobTimeout, PluginError

Entered = list[tuple[str, Generator[None, Any, Any]]]  # the run_job wrappers a job is inside

logger = logging.getLogger("tinyq.plugins")

LIFECYCLE_HOOKS = (
    "tinyq_before_enqueue", "tinyq_after_enqueue", "tinyq_enqueue_failed", "tinyq_worker_started",
    "tinyq_worker_stopping", "tinyq_job_received", "tinyq_job_recovered", "tinyq_run_job",
    "tinyq_job_succeeded", "tinyq_job_timed_out", "tinyq_job_retried", "tinyq_job_failed",
    "tinyq_job_dead_lettered", "tinyq_job_given_back", "tinyq_job_cancelled",
    "tinyq_job_expired",
)

# Called when a job's outcome is decided (one of them, two for a timeout or a failure).
SETTLEMENT_HOOKS = ("tinyq_job_succeeded", "tinyq_job_timed_out", "tinyq_job_retried",
                    "tinyq_job_failed", "tinyq_job_dead_lettered", "tinyq_job_cancelled",
                    "tinyq_job_expired")

Impl = tuple[str, Callable[..., Any], tuple[str, ...]]  # (plugin name, function, arg names)


class Hooks:
    """The lifecycle hook implementations of one plugin manager, by hook name, each a tuple
    in calling order (pluggy's: the last registered first, then tryfirst/trylast). Read
    ``hooks.impls[name]`` for truth before building a hook's arguments: empty, skip it."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self._pm = pm
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.impls: dict[str, tuple[Impl, ...]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Look the implementations up again (after a plugin was registered)."""
        impls: dict[str, tuple[Impl, ...]] = {}
        for name in LIFECYCLE_HOOKS:
            found = [] if self._pm is None else getattr(self._pm.hook, name).get_hookimpls()
            for impl in found:
                if (name == "tinyq_run_job") != bool(impl.wrapper):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {name} must be "
                        + ("a @hookimpl(wrapper=True) generator" if name == "tinyq_run_job"
                           else "a plain @hookimpl (not a wrapper)"))
            impls[name] = tuple((i.plugin_name, i.function, tuple(i.argnames))
                                for i in reversed(found))
        self.impls = impls
        # The hot ones as attributes: one lookup less per job.
        self.received, self.recovered = impls["tinyq_job_received"], impls["tinyq_job_recovered"]
        self.run_job, self.succeeded = impls["tinyq_run_job"], impls["tinyq_job_succeeded"]
        self.given_back = impls["tinyq_job_given_back"]
        self.settles = any(impls[name] for name in SETTLEMENT_HOOKS)
        self.before_enqueue = impls["tinyq_before_enqueue"]
        self.after_enqueue = impls["tinyq_after_enqueue"]
        self.enqueue_failed = impls["tinyq_enqueue_failed"]

    def add_plugin(self, plugin: object, name: str) -> None:
        """Register one more plugin (the CLI's own, like ``--metrics-port``'s)."""
        if self._pm is None:
            raise PluginError("these hooks have no plugin manager to add a plugin to")
        self._pm.register(plugin, name=name)
        self.refresh()

    def call(self, name: str, **kwargs: Any) -> None:
        """Call every implementation of hook ``name``, each with the arguments it asks for."""
        for plugin, function, argnames in self.impls[name]:
            try:
                function(**{arg: kwargs[arg] for arg in argnames})
            except Exception as exc:
                self.failed(name, plugin, exc)

    def failed(self, hook: str, plugin: str, exc: BaseException) -> None:
        """Log a hook that raised, once per hook and plugin (a hook called per job would
        otherwise fill the log); later ones only at debug level."""
        with self._lock:
            first = (hook, plugin) not in self._warned
            self._warned.add((hook, plugin))
        level = logging.ERROR if first else logging.DEBUG
        logger.log(level, "tinyq plugin %r raised in %s (the job goes on; logged once): %s: %s",
                   plugin, hook, type(exc).__name__, exc, exc_info=exc if first else None)

    def around(self, job_kwargs: dict[str, Any], call: Callable[[], Any]) -> Any:
        """Run ``call()`` inside every ``tinyq_run_job`` wrapper, the first in calling order
        outermost, and return its value or raise its exception, whatever the wrappers do."""
        entered: Entered = []
        value: Any = None
        error: BaseException | None = None
        try:
            self.enter(job_kwargs, entered)
            value = call()
        except BaseException as exc:
            error = exc
        return self.leave(entered, value, error)

    def enter(self, job_kwargs: dict[str, Any], entered: Entered) -> None:
        """``around``'s first half: enter the wrappers, adding each to ``entered`` (an async
        job awaits its coroutine between ``enter`` and ``leave``)."""
        for plugin, function, argnames in self.run_job:
            try:
                gen = function(**{arg: job_kwargs[arg] for arg in argnames})
                next(gen)
                entered.append((plugin, gen))
            except (JobTimeout, Cancelled):  # landing in a wrapper: the job's end
                raise
            except Exception as exc:
                self.failed("tinyq_run_job", plugin, exc)

    def leave(self, entered: Entered, value: Any, error: BaseException | None) -> Any:
        """``around``'s second half: leave the wrappers, innermost first; the job's value,
        or its exception raised."""
        for plugin, gen in reversed(entered):
            try:
                if error is None:
                    gen.send(value)
                else:
                    gen.throw(error)
            except StopIteration:
                continue
            except (JobTimeout, Cancelled) as exc:  # as above: it ends the job all the same
                error = error or exc
                continue
            except BaseException as exc:
                if exc is not error:
                    self.failed("tinyq_run_job", plugin, exc)
                continue
            self.failed("tinyq_run_job", plugin, RuntimeError("the wrapper yielded twice"))
        if error is not None:
            raise error
        return value


NO_HOOKS = Hooks()
