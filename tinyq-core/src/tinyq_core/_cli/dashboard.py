"""``tinyq dashboard``: serve the web dashboard (tinyq_core.dashboard) with uvicorn.

Loopback only unless a ``--token`` guards it: the pages show job arguments and results, and
with ``--allow-actions`` anyone reaching the port could requeue and purge."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from .._app import Application
from .._interfaces import BrokerAdmin
from .loading import CommandError

EXTRA = "pip install 'tinyq-core[dashboard]'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise CommandError(f"--host {host} exposes the dashboard beyond this machine: pass "
                           "--token TOKEN too (every request must then carry it), or keep "
                           "the default --host 127.0.0.1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; others need --token)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--allow-actions", action="store_true",
                        help="allow requeueing and purging from the pages")
    parser.add_argument("--token", help="a secret every request must carry "
                        "(?token=TOKEN once, or an Authorization: Bearer header)")


def serve(app: Application, admin: BrokerAdmin, args: argparse.Namespace) -> int:
    check_exposure(args.host, args.token)
    try:
        import uvicorn

        from ..dashboard import create_app
    except ImportError as exc:
        raise CommandError(f"the dashboard needs its extra ({exc.name} is missing): "
                           f"{EXTRA}") from None
    asgi = create_app(app, allow_actions=args.allow_actions, token=args.token)
    shown = f"http://{args.host}:{args.port}/"
    print(f"tinyq dashboard on {shown}" + (" (actions allowed)" if args.allow_actions else ""),
          file=sys.stderr, flush=True)
    uvicorn.run(asgi, host=args.host, port=args.port, log_level="warning")
    return 0
