"""Key names of one queue; all share the hash tag ``{prefix:queue}`` (one Cluster slot).

The tag is read by splitting at its first ':', so a prefix holds no ':' (queue names may):
otherwise prefix ``a`` with queue ``b:c`` and prefix ``a:b`` with queue ``c`` would share the
keys ``{a:b:c}:...``. Refusing ':' in the prefix, not in queue names, leaves the keys of every
existing queue where they are; a colliding prefix is refused at start-up, loudly.
"""

from __future__ import annotations

from tinyq_core.plugin import ConfigurationError

GROUP = "tinyq"  # the consumer group of every queue's stream


def text(value: bytes | str) -> str:
    """A reply as str (replies are bytes unless the client decodes them)."""
    return value.decode() if isinstance(value, bytes) else value


def check_name(what: str, name: str) -> None:
    """Refuse a queue name or prefix that cannot be part of a key, with what to do instead."""
    if not name or any(c in name for c in "{}"):
        raise ConfigurationError(f"{what} must be a non-empty name without braces, not {name!r}")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"{what} {name!r} cannot be encoded as UTF-8 (a lone surrogate?), so it cannot "
            "be a Redis key: use a name made of ordinary text"
        ) from None


def check_prefix(prefix: str) -> None:
    check_name("prefix", prefix)
    if ":" in prefix:
        raise ConfigurationError(
            f"prefix {prefix!r} must not contain ':' (keys are '{{prefix:queue}}:...', so it "
            "could share keys with another prefix's queue): use "
            f"{prefix.replace(':', '-')!r} instead"
        )


class Keys:
    __slots__ = ("dead", "delayed", "jobs", "payloads", "progresses", "recovered", "results",
                 "stream", "wake")

    def __init__(self, prefix: str, queue: str) -> None:
        tag = f"{{{prefix}:{queue}}}"
        self.stream = f"{tag}:stream"
        self.jobs = f"{tag}:jobs"
        self.delayed = f"{tag}:delayed"
        self.payloads = f"{tag}:payloads"
        self.wake = f"{tag}:wake"
        self.dead = f"{tag}:dead"
        self.recovered = f"{tag}:recovered"  # entry id -> deliveries before it (recover.lua)
        self.results = f"{tag}:result:"
        self.progresses = f"{tag}:progress:"

    @property
    def schedule(self) -> tuple[str, ...]:
        """The keys of schedule.lua, in its order."""
        return (self.stream, self.delayed, self.payloads, self.wake, self.jobs, self.recovered,
                self.results)

    @property
    def enqueue(self) -> tuple[str, str, str, str]:
        """The keys of enqueue.lua, in its order."""
        return (self.stream, self.jobs, self.delayed, self.results)

    def result(self, job_id: str) -> str:
        return self.results + job_id

    def progress(self, job_id: str) -> str:
        """A running job's progress: a string key beside its result (the same slot)."""
        return self.progresses + job_id


def queues_key(prefix: str) -> str:
    """The set of every queue name a job was sent to (``BrokerAdmin.queues``); the hash tag
    ``{prefix}`` is the worker registry's, apart from every queue's ``{prefix:queue}``."""
    return f"{{{prefix}}}:queues"
