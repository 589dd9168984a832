"""Key names of one queue; all share the hash tag ``{prefix:queue}`` (one Cluster slot)."""

from __future__ import annotations

GROUP = "tinyq"  # the consumer group of every queue's stream


def text(value: bytes | str) -> str:
    """A reply as str (replies are bytes unless the client decodes them)."""
    return value.decode() if isinstance(value, bytes) else value


class Keys:
    __slots__ = ("dead", "delayed", "jobs", "payloads", "results", "stream", "wake")

    def __init__(self, prefix: str, queue: str) -> None:
        tag = f"{{{prefix}:{queue}}}"
        self.stream = f"{tag}:stream"
        self.jobs = f"{tag}:jobs"
        self.delayed = f"{tag}:delayed"
        self.payloads = f"{tag}:payloads"
        self.wake = f"{tag}:wake"
        self.dead = f"{tag}:dead"
        self.results = f"{tag}:result:"

    @property
    def schedule(self) -> tuple[str, str, str, str, str]:
        """The keys of schedule.lua, in its order."""
        return (self.stream, self.delayed, self.payloads, self.wake, self.jobs)

    def result(self, job_id: str) -> str:
        return self.results + job_id
