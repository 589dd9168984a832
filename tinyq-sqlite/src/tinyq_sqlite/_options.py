"""Parsing ``sqlite://`` URIs: the file's path and the broker's options.

The slashes follow SQLAlchemy's convention: ``sqlite://`` is the scheme, then an empty host,
then the path. So three slashes before a relative path and four before an absolute one:

* ``sqlite:///tinyq.db``: ``tinyq.db`` in the working directory;
* ``sqlite:///data/jobs.db``: ``data/jobs.db`` relative to the working directory;
* ``sqlite:////var/lib/app/jobs.db``: the absolute path ``/var/lib/app/jobs.db``.

A host (``sqlite://host/x.db``) is refused: a database on another machine is a network file
system, where SQLite's locking cannot be trusted. Percent-escapes in the path are decoded
(``%20`` for a space; ``%3F`` for a ``?`` in a file name).
"""

from __future__ import annotations

import difflib
from urllib.parse import parse_qsl, unquote

import attrs

from tinyq_core.plugin import ConfigurationError

SCHEME = "sqlite"


@attrs.frozen
class Options:
    """What a ``sqlite://`` URI sets; the defaults are the documented ones (docs/sqlite.md)."""

    path: str
    visibility_timeout: float = 30.0
    # sqlite3's own wait for a lock, per statement; the broker retries with backoff on top.
    busy_timeout: float = 5.0
    # Used only where no wake-up mechanism works (no inotify, no unix sockets): how often a
    # blocked reserve or result wait then polls PRAGMA data_version for another commit.
    poll_interval: float = 0.005
    # synchronous=NORMAL (WAL): a commit survives a crash of the process but maybe not of
    # the machine; FULL fsyncs every commit. A durable enqueue is always FULL.
    synchronous: str = "NORMAL"


KNOWN = ("visibility_timeout", "busy_timeout", "poll_interval", "synchronous")


def _bad(uri: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"bad SQLite URI {uri!r}: {why}")


def _seconds(uri: str, options: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(options.get(name, default))
    except ValueError:
        raise _bad(uri, f"{name} must be a number of seconds") from None
    if not value > 0:
        raise _bad(uri, f"{name} must be more than 0 seconds")
    return value


def _unknown(uri: str, names: list[str]) -> ConfigurationError:
    named = []
    for name in names:
        close = difflib.get_close_matches(name, KNOWN, n=1)
        named.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return _bad(uri, f"unknown option(s) {', '.join(named)}; known: {', '.join(KNOWN)}")


def parse(uri: str) -> Options:
    """The path and options of ``uri``; a :class:`ConfigurationError` saying how to fix it."""
    prefix = f"{SCHEME}://"
    if not uri.startswith(prefix):
        raise _bad(uri, f"it must start with {prefix}")
    rest, _, query = uri[len(prefix):].partition("?")
    rest = rest.partition("#")[0]
    if not rest.startswith("/"):
        # sqlite://host/x.db, or sqlite://x.db (two slashes, a common slip).
        raise _bad(uri, "use three slashes before a relative path (sqlite:///tinyq.db) and "
                        "four before an absolute one (sqlite:////var/lib/tinyq.db)")
    path = unquote(rest[1:])
    if not path or path.endswith("/"):
        raise _bad(uri, "no file name (sqlite:///tinyq.db names tinyq.db in the working "
                        "directory)")
    if path == ":memory:":
        raise _bad(uri, "an in-memory database lives in one process: use memory:// instead")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(KNOWN))
    if unknown:
        raise _unknown(uri, unknown)
    synchronous = options.get("synchronous", "NORMAL").upper()
    if synchronous not in ("NORMAL", "FULL"):
        raise _bad(uri, f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    return Options(
        path=path,
        visibility_timeout=_seconds(uri, options, "visibility_timeout", 30.0),
        busy_timeout=_seconds(uri, options, "busy_timeout", 5.0),
        poll_interval=_seconds(uri, options, "poll_interval", 0.005),
        synchronous=synchronous,
    )
