"""The web dashboard (``tinyq dashboard``, or mounted in your own ASGI app): queues, workers,
jobs and dead letters in a browser. Needs the extra: ``pip install 'tinyq-core[dashboard]'``
(Starlette, Jinja2, python-multipart; uvicorn for the command).

    from tinyq_core.dashboard import create_app
    dashboard = create_app(app, allow_actions=False)  # an ASGI application
"""

from .app import create_app

__all__ = ["create_app"]
