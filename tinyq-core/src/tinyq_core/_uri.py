"""Broker URIs in logs and messages: passwords hidden."""

from __future__ import annotations

from urllib.parse import unquote_plus

SECRET_QUERY_OPTIONS = {"password", "ssl_password"}


def redact_uri(uri: str) -> str:
    """``uri`` with its passwords (in the userinfo or the query) replaced by ``***``, fit for
    logs and error messages. Split by hand, not by urlsplit: a URI may list several hosts
    (``redis+cluster://a:1,b:2``) or fail to parse, and its secrets must go all the same."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    rest, qmark, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    if query:
        query = "&".join(
            f"{name}=***" if unquote_plus(name) in SECRET_QUERY_OPTIONS
            else f"{name}={value}" if eq else name
            for name, eq, value in (item.partition("=") for item in query.split("&"))
        )
    return f"{scheme}://{userinfo}{at}{hosts}{slash}{path}{qmark}{query}"
