"""Turning a Redis URI into a client and broker options.

Schemes: ``redis://`` and ``rediss://`` (TLS) to one server, ``unix://`` to its socket,
``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://``) to a Redis Cluster,
and ``redis+sentinel://host:port[,host:port...]/service_name`` (or ``rediss+sentinel://``) to
the primary that Sentinel names for ``service_name``, followed through failovers.

tinyq's own options ride in the query string next to redis-py's:
``redis://host:6379/0?visibility_timeout=5&prefix=myapp&socket_timeout=5``.
"""

from __future__ import annotations

import difflib
import inspect
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import attrs
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import URL_QUERY_ARGUMENT_PARSERS, parse_url
from redis.exceptions import OutOfMemoryError, RedisClusterException
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from tinyq_core.plugin import BrokerError, BrokerUnavailable, ConfigurationError
from tinyq_core.plugin import redact_uri as redact

from ._keys import check_prefix

TINYQ_OPTIONS = ("visibility_timeout", "prefix", "durable_timeout", "allow_eviction")
# (in docs/redis.md's order)
# The redis-py options an unknown option's error names; it leaves out the other few dozen
# (internals such as parser_class or event_dispatcher) and says where they are.
USUAL_REDIS_OPTIONS = ("socket_timeout", "socket_connect_timeout", "health_check_interval",
                       "max_connections", "client_name", "db", "username", "password")
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel",
           "rediss+sentinel")


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
    durable_timeout: float = 1.0  # seconds a durable enqueue waits for a replica
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    allow_eviction: bool = False  # run on a Redis whose maxmemory-policy is allkeys-*


def _retry() -> Retry:
    # A short, bounded retry: a producer gets BrokerUnavailable within about a second; the
    # worker has its own, unbounded backoff on top.
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 3)


def _bad(uri: str, why: object) -> ConfigurationError:
    return ConfigurationError(f"bad Redis URI {redact(uri)!r}: {why}")


def _unknown_options(unknown: list[str], base: str, accepted: set[str]) -> ConfigurationError:
    """One line: each unknown name with the closest known one, then tinyq's options and
    redis-py's usual ones (redis-py takes about 40, mostly internals: see docs/redis.md)."""
    known = [*TINYQ_OPTIONS, *sorted(accepted)]
    named = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        named.append(f"{name} (did you mean {close[0]}?)" if close else name)
    usual = [*USUAL_REDIS_OPTIONS, *(["ssl_*"] if base == "rediss" else [])]
    return ConfigurationError(
        f"unknown option(s) in the Redis URI: {', '.join(named)}; tinyq's options: "
        f"{', '.join(TINYQ_OPTIONS)}; redis-py's usual ones: {', '.join(usual)} "
        "(every other redis-py option: see docs/redis.md)"
    )


def _number(ours: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(ours.get(name, default))
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be more than 0 seconds")
    return value


def _flag(ours: dict[str, str], name: str) -> bool:
    value = ours.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigurationError(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1", "yes")


def connect(uri: str, *, asynchronous: bool = False, **overrides: Any) -> tuple[Any, Options, str]:
    """A client for ``uri`` (not connected yet), tinyq's options, and the URI without secrets.

    The client is a ``redis.Redis`` except for ``+cluster`` URIs (a ``RedisCluster``). With
    ``asynchronous``, a ``redis.asyncio.Redis`` for one server, and None for a Cluster or
    Sentinel URI (the async tier drives those through threads)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise _bad(uri, f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
    base, _, topology = scheme.partition("+")
    netloc, _, query_text = rest.partition("?")
    netloc, slash, path = netloc.partition("/")
    query = dict(parse_qsl(query_text))
    query.update({k: str(v) for k, v in overrides.items()})
    ours = {k: query.pop(k) for k in list(query) if k in TINYQ_OPTIONS}
    accepted = REDIS_OPTIONS["unix" if base == "unix" else base]
    unknown = set(query) - accepted
    if unknown:
        raise _unknown_options(sorted(unknown), base, accepted)
    query.setdefault("socket_timeout", str(DEFAULT_SOCKET_TIMEOUT))
    query.setdefault("socket_connect_timeout", "2")
    query.setdefault("health_check_interval", "15")
    try:
        socket_timeout = float(query["socket_timeout"])
    except ValueError:
        raise ConfigurationError(
            f"Invalid value for 'socket_timeout' in the Redis URI: {query['socket_timeout']!r}"
        ) from None
    options = Options(
        visibility_timeout=_number(ours, "visibility_timeout", 30.0),
        prefix=ours.get("prefix", "tinyq"),
        durable_timeout=_number(ours, "durable_timeout", 1.0),
        socket_timeout=socket_timeout,
        allow_eviction=_flag(ours, "allow_eviction"),
    )
    check_prefix(options.prefix)
    if topology:
        if asynchronous:
            return None, options, redact(uri)
        client = _connect_many(uri, base, topology, netloc, path, query)
        return client, options, redact(uri)
    try:
        parts = urlsplit(f"{base}://{netloc}{slash}{path}")
        parts.port  # noqa: B018 - a bad port or bracket raises here
    except ValueError as exc:
        raise _bad(uri, exc) from None
    if base in ("redis", "rediss") and not parts.hostname:
        # "redis://" alone means the local server, as in redis-py and the original tinyq.
        parts = parts._replace(netloc=parts.netloc + "localhost:6379")
    # Built by hand: urlunsplit drops the "//" of "unix:///path" when there is no host.
    url = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"
    try:
        if asynchronous:  # the same options, bounded retry included
            return aioredis.Redis.from_url(
                url, retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 3),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            ), options, redact(uri)
        client = redis.Redis.from_url(
            url, retry=_retry(), retry_on_error=[redis.ConnectionError, redis.TimeoutError]
        )
    except ValueError as exc:
        raise _bad(uri, exc) from None
    return client, options, redact(uri)


def _connect_many(
    uri: str, base: str, topology: str, netloc: str, path: str, query: dict[str, str]
) -> Any:
    """A client for a ``+cluster`` or ``+sentinel`` URI: several ``host:port`` seeds."""
    userinfo, at, hosts = netloc.rpartition("@")
    seeds = []
    for item in hosts.split(","):
        try:
            parts = urlsplit(f"//{item}")
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise _bad(uri, exc) from None
        if not host:
            raise _bad(uri, f"{item!r} is not a host:port")
        seeds.append((host, port or (26379 if topology == "sentinel" else 6379)))
    # redis-py's URL parser types every option; the host in this URL is only a placeholder.
    try:
        kwargs = parse_url(f"{base}://{userinfo}{at}localhost/?{urlencode(query)}")
    except ValueError as exc:
        raise _bad(uri, exc) from None
    for name in ("host", "port", "db"):
        kwargs.pop(name, None)
    if kwargs.pop("connection_class", None) is redis.SSLConnection:
        kwargs["ssl"] = True
    retry_on = [redis.ConnectionError, redis.TimeoutError]
    if topology == "cluster":
        if path.strip("/"):
            raise _bad(uri, "a cluster has no databases: leave out the path (/0)")
        try:  # RedisCluster asks a seed node for the slot map at once
            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in seeds],
                retry=_retry(), retry_on_error=retry_on, **kwargs,
            )
        except (RedisClusterException, redis.RedisError) as exc:
            raise BrokerUnavailable(
                f"Redis Cluster at {redact(uri)} is unreachable: {exc}"
            ) from None
    service, _, db = path.partition("/")
    if not service:
        raise _bad(uri, "name the Sentinel service: redis+sentinel://host:port/service_name")
    if db.strip("/"):
        try:
            kwargs["db"] = int(db.strip("/"))
        except ValueError:
            raise _bad(uri, f"the database {db!r} is not a number") from None
    # The sentinels get the socket and TLS settings, not the primary's credentials: Sentinel
    # deployments usually protect the data nodes only.
    sentinel_kwargs: dict[str, Any] = {
        k: v for k, v in kwargs.items() if k.startswith(("socket_", "ssl"))
    }
    # One quick retry per sentinel: the primary's own retry asks all of them again.
    sentinel_kwargs["retry"] = Retry(ExponentialBackoff(cap=0.1, base=0.02), 1)
    sentinel = Sentinel(seeds, sentinel_kwargs=sentinel_kwargs, **kwargs)
    return sentinel.master_for(
        unquote(service), retry=_retry(), retry_on_error=retry_on
    )


def out_of_memory(where: str) -> str:
    """What to say when Redis refuses a write at ``maxmemory`` (policy ``noeviction``): its
    own text names a script's SHA and line, which tells an operator nothing."""
    return (f"Redis at {where} is out of memory (used memory over maxmemory) and refused the "
            "write; free memory (let workers drain the queues, purge some, delete other keys) "
            "or raise maxmemory")


class translate_errors:  # lower case: used like a function, ``with translate_errors(where)``
    """redis-py's connection errors become BrokerUnavailable, the rest BrokerError. A class,
    not @contextmanager: it wraps every enqueue, and this costs a fifth as much."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is None:
            return
        where = self.where
        if isinstance(exc, MasterNotFoundError):
            # Its text goes on with the repr of every sentinel client: keep the first part.
            why = str(exc).split(" : ")[0]
            raise BrokerUnavailable(
                f"Redis at {where} is unreachable: {why} (are the sentinels up, and is the "
                "service name the one they monitor?)"
            ) from exc
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            raise BrokerUnavailable(f"Redis at {where} is unreachable: {exc}") from exc
        if isinstance(exc, OutOfMemoryError):
            raise BrokerError(out_of_memory(where)) from exc
        if isinstance(exc, redis.RedisError | RedisClusterException):
            raise BrokerError(f"Redis at {where} failed: {exc}") from exc
