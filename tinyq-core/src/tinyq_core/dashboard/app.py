"""``create_app``: the dashboard as an ASGI application (Starlette), to serve with
``tinyq dashboard`` or to mount in your own app. Pages are rendered on the server by Jinja2
with autoescaping on: job arguments, errors and queue names are data from whoever can send a
job, so every value is escaped. Links start from the ASGI ``root_path``, so the pages work
when mounted under a path or served behind a proxy prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .._app import Application
from .._cli.output import age
from .._interfaces import BrokerAdmin
from . import data
from .security import Csrf, TokenGate
from .throughput import Throughput, chart_points

HERE = Path(__file__).parent


class Dashboard:
    """The pages and actions over one application's broker."""

    def __init__(self, app: Application, admin: BrokerAdmin, allow_actions: bool,
                 csrf: Csrf) -> None:
        self.app, self.admin = app, admin
        self.allow_actions = allow_actions
        self.csrf = csrf
        self.throughput = Throughput()
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                 autoescape=True)  # every {{ value }} is HTML-escaped
        env.filters["age"] = age
        self.templates = Jinja2Templates(env=env)

    def render(self, request: Request, name: str, status: int = 200,
               **context: Any) -> Response:
        """``name``'s page; with ``?fragment=1`` only its live part (polled by the script)."""
        base = request.scope.get("root_path", "").rstrip("/")
        fragment = request.query_params.get("fragment") == "1"
        context.update(base=base, actions=self.allow_actions, csrf=self.csrf.token,
                       notice=request.query_params.get("notice", ""), urlencode=urlencode,
                       fragment_url=request.url.path + "?" + urlencode(
                           [*request.query_params.multi_items(), ("fragment", "1")]))
        template = f"_{name}.html" if fragment else f"{name}.html"
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def overview(self, request: Request) -> Response:
        found = data.overview(self.app, self.admin)
        if found["workers"] is not None:
            self.throughput.sample(found["workers"])
        minutes = self.throughput.per_minute()
        return self.render(request, "overview", **found, per_minute=minutes,
                           points=chart_points(minutes))

    def queue(self, request: Request) -> Response:
        queue = request.query_params.get("name", "")
        page = max(0, int_param(request, "page"))
        try:
            rows = data.waiting_page(self.app, self.admin, queue, page)
        except NotImplementedError:
            return PlainTextResponse("This broker cannot list a queue's messages.", 501)
        return self.render(request, "queue", queue=queue, rows=rows, page=page,
                           more=len(rows) == data.PAGE_SIZE,
                           counts=data.stats(self.app, self.admin, queue))

    def dead(self, request: Request) -> Response:
        queue = request.query_params.get("queue", "")
        return self.render(request, "dead", queue=queue,
                           rows=data.dead_page(self.app, self.admin, queue))

    def job(self, request: Request) -> Response:
        job_id = request.query_params.get("id", "")
        found = data.job_report(self.app, self.admin, job_id,
                                request.query_params.get("queue") or None)
        if found is None:
            return self.render(request, "missing", 404, job_id=job_id)
        fields = found.fields()
        running = data.running_on(self.app, found.id)
        if running is not None:
            fields.append(("running", f"for {age(running[1])} on worker {running[0]}"))
        return self.render(request, "job", found=found, fields=fields)

    def workers(self, request: Request) -> Response:
        return self.render(request, "workers", workers=data.workers_of(self.app))

    async def act(self, request: Request) -> Response:
        """A POSTed action: refused unless actions are allowed and the form's CSRF token is
        this process's. Then back to the page the form was on, saying what was done."""
        if not self.allow_actions:
            return PlainTextResponse("Actions are disabled: start the dashboard with "
                                     "--allow-actions (create_app(allow_actions=True)).", 403)
        form = await request.form()
        if not self.csrf.valid(form.get("csrf")):
            return PlainTextResponse("Missing or stale form token: reload the page and try "
                                     "again.", 403)
        queue = str(form.get("queue", ""))
        ids = [str(i) for i in form.getlist("id")] or None
        notice = await run_action(self.admin, request.path_params["action"], queue, ids)
        if notice is None:
            return PlainTextResponse("No such action.", 404)
        back = str(form.get("back", "")) or "/"
        if not back.startswith("/") or back.startswith("//"):
            back = "/"  # only a page of this dashboard: never an open redirect
        base = request.scope.get("root_path", "").rstrip("/")
        join = "&" if "?" in back else "?"
        return RedirectResponse(f"{base}{back}{join}{urlencode({'notice': notice})}", 303)


async def run_action(admin: BrokerAdmin, action: str, queue: str,
                     ids: list[str] | None) -> str | None:
    from starlette.concurrency import run_in_threadpool  # broker calls block: off the loop

    if action == "requeue":
        done = await run_in_threadpool(admin.requeue_dead_letters, queue, ids)
        return f"Requeued {done} dead letter(s) of {queue}."
    if action == "purge-dead":
        done = await (run_in_threadpool(admin.purge_dead_letters, queue) if ids is None
                      else run_in_threadpool(admin.purge_dead_letters, queue, ids))
        return f"Deleted {done} dead letter(s) of {queue}."
    if action == "purge":
        done = await run_in_threadpool(admin.purge, queue)
        return f"Purged {done} waiting job(s) from {queue}."
    return None


def int_param(request: Request, name: str) -> int:
    try:
        return int(request.query_params.get(name, "0"))
    except ValueError:
        return 0


def create_app(app: Application, *, allow_actions: bool = False, token: str | None = None,
               secret: bytes | None = None) -> Starlette:
    """The dashboard of ``app``'s broker as an ASGI application.

    ``allow_actions``: show and accept requeue and purge (POST forms with a CSRF token).
    ``token``: required on every request (``Authorization: Bearer``, or ``?token=`` once).
    ``secret``: the CSRF secret, random per process by default.
    Mount it with ``Mount("/tinyq", app=create_app(app))`` (Starlette) or
    ``fastapi_app.mount("/tinyq", create_app(app))``."""
    broker = app.broker
    if not isinstance(broker, BrokerAdmin):
        raise TypeError(f"the dashboard needs a broker with the admin tier; "
                        f"{type(broker).__name__} has none")
    board = Dashboard(app, broker, allow_actions, Csrf(secret))
    routes = [
        Route("/", board.overview, name="overview"),
        Route("/queue", board.queue, name="queue"),
        Route("/dead", board.dead, name="dead"),
        Route("/job", board.job, name="job"),
        Route("/workers", board.workers, name="workers"),
        Route("/actions/{action}", board.act, methods=["POST"], name="act"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenGate, token=token)])
