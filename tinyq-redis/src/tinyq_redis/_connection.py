"""Turning a ``redis://``, ``rediss://`` or ``unix://`` URI into a client and broker options.

tinyq's own options ride in the query string next to redis-py's:
``redis://host:6379/0?visibility_timeout=5&prefix=myapp&socket_timeout=5``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs
import redis
from redis.backoff import ExponentialBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry

from tinyq_core import BrokerError, BrokerUnavailable, ConfigurationError
from tinyq_core._plugins import redact_uri as redact

TINYQ_OPTIONS = {"visibility_timeout", "prefix"}


def _redis_options(kind: type) -> set[str]:
    """The query options redis-py accepts for one connection class: its URL parsers and the
    class's arguments."""
    names = set(URL_QUERY_ARGUMENT_PARSERS) | {"max_connections"}
    for cls in kind.__mro__:
        if "__init__" in vars(cls):
            names |= set(inspect.signature(vars(cls)["__init__"]).parameters)
    return names - {"self", "args", "kwargs", "host", "port", "path", "retry"}


REDIS_OPTIONS = {
    "redis": _redis_options(redis.Connection),
    "rediss": _redis_options(redis.SSLConnection),
    "unix": _redis_options(redis.UnixDomainSocketConnection),
}
DEFAULT_SOCKET_TIMEOUT = 5.0  # seconds; every blocking call waits less than this


@attrs.frozen
class Options:
    visibility_timeout: float = 30.0
    prefix: str = "tinyq"


def connect(uri: str, **overrides: Any) -> tuple[redis.Redis, Options, str]:
    """A client for ``uri`` (not connected yet), tinyq's options, and the URI without secrets."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - a bad port or bracket raises here
    except ValueError as exc:
        raise ConfigurationError(f"bad Redis URI {redact(uri)!r}: {exc}") from None
    query = dict(parse_qsl(parts.query))
    query.update({k: str(v) for k, v in overrides.items()})
    ours = {k: query.pop(k) for k in list(query) if k in TINYQ_OPTIONS}
    accepted = REDIS_OPTIONS.get(parts.scheme, REDIS_OPTIONS["redis"])
    unknown = set(query) - accepted
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) in the Redis URI: {', '.join(sorted(unknown))} "
            f"(known for {parts.scheme}://: {', '.join(sorted(TINYQ_OPTIONS | accepted))})"
        )
    try:
        options = Options(
            visibility_timeout=float(ours.get("visibility_timeout", 30.0)),
            prefix=ours.get("prefix", "tinyq"),
        )
    except ValueError:
        raise ConfigurationError("visibility_timeout must be a number of seconds") from None
    if options.visibility_timeout <= 0:
        raise ConfigurationError("visibility_timeout must be more than 0 seconds")
    if not options.prefix or any(c in options.prefix for c in "{}"):
        raise ConfigurationError("prefix must be a non-empty name without braces")
    query.setdefault("socket_timeout", str(DEFAULT_SOCKET_TIMEOUT))
    query.setdefault("socket_connect_timeout", "2")
    query.setdefault("health_check_interval", "15")
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        # "redis://" alone means the local server, as in redis-py and the original tinyq.
        parts = parts._replace(netloc=parts.netloc + "localhost:6379")
    # Built by hand: urlunsplit drops the "//" of "unix:///path" when there is no host.
    url = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"
    try:
        client = redis.Redis.from_url(
            url,
            # A short, bounded retry: a producer gets BrokerUnavailable within about a second;
            # the worker has its own, unbounded backoff on top.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
    except ValueError as exc:
        raise ConfigurationError(f"bad Redis URI {redact(uri)!r}: {exc}") from None
    return client, options, redact(uri)


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """redis-py's connection errors become BrokerUnavailable, the rest BrokerError."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"Redis at {where} is unreachable: {exc}") from exc
    except redis.RedisError as exc:
        raise BrokerError(f"Redis at {where} failed: {exc}") from exc
