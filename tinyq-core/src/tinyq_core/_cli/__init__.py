"""The ``tinyq`` command.

``tinyq [worker flags]`` and ``tinyq worker [worker flags]`` run a worker (worker.py);
``tinyq info|job|dead|purge|send|dashboard ...`` are the admin commands (admin.py). Bad
input (an app path that does not import, an unknown URI scheme, an unreachable broker) ends
with one line on stderr and exit status 1; ``-v`` adds the traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence

from .._errors import TinyqError
from . import admin, worker
from .loading import LEVELS, CommandError, setup_logging

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv  # -v: a traceback with an error
    try:
        if argv and argv[0] in admin.COMMANDS:
            code = admin.main(argv)
        else:
            explicit = bool(argv) and argv[0] == "worker"
            argv = argv[1:] if explicit else argv
            args = worker.build_parser("tinyq worker" if explicit else "tinyq").parse_args(argv)
            setup_logging(logging.DEBUG if args.verbose else LEVELS[args.log_level],
                          args.log_format)
            code = worker.run(args, argv)
    except KeyboardInterrupt:  # Ctrl+C in a command that waits (send --wait): no traceback
        code = 130
    except (CommandError, TinyqError) as exc:
        if verbose:
            traceback.print_exc()
        print(f"tinyq: error: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)
