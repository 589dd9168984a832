"""tinyq-redis: the Redis broker and result backend (``redis://``, ``rediss://``, ``unix://``)."""

from ._broker import RedisBroker
from ._results import RedisResultBackend

__all__ = ["RedisBroker", "RedisResultBackend"]
