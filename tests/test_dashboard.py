"""The web dashboard's routes through Starlette's TestClient (no server, no browser): pages,
escaping, the token, CSRF, actions refused unless allowed, links under a mount path, and the
``tinyq dashboard`` command's refusals. The browser tests are in test_dashboard_browser.py."""

from __future__ import annotations

import re
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2: httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from starlette.applications import Starlette
from starlette.routing import Mount

from tinyq_core import Application
from tinyq_core._cli import admin
from tinyq_core._cli.loading import CommandError
from tinyq_core.dashboard import create_app
from tinyq_core.dashboard.throughput import Throughput
from tinyq_core.plugin import WorkerInfo

EVIL = "<script>window.__pwned=1</script>"


@pytest.fixture
def app() -> Iterator[Application]:
    app = Application("memory://")

    @app.task(name="add")
    def add(x: object, y: object) -> object:
        return x

    app.add = add  # type: ignore[attr-defined]
    yield app
    app.close()


def kill(app: Application, queue: str = "default", error: str = "ValueError: boom") -> str:
    """Reserve the next job of ``queue`` and dead-letter it; its id."""
    [delivery] = app.broker.reserve([queue], 1, 1.0)
    app.broker.dead_letter(delivery, "failed after 1 attempt(s)", error)
    return delivery.message.id


def client(app: Application, **options: object) -> TestClient:
    return TestClient(create_app(app, **options), follow_redirects=False)  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no action form on the page"
    return found.group(1)


def test_pages_show_queues_jobs_and_dead_letters(app: Application) -> None:
    waiting = app.add.delay(1, 2)  # type: ignore[attr-defined]
    app.add.apply_async((3, 4), countdown=3600)  # type: ignore[attr-defined]
    app.add.delay("doomed", 0)  # type: ignore[attr-defined]
    # The first two are leased, the 'doomed' one dies: default has 1 ready... after the reserve
    [first] = app.broker.reserve(["default"], 1, 1.0)
    app.broker.nack(first)  # back of the queue: 'doomed' is next
    dead_id = kill(app)
    web = client(app)
    overview = web.get("/")
    assert overview.status_code == 200
    row = re.search(r">default</a></td>(.*?)</tr>", overview.text, re.S)
    assert row, overview.text
    numbers = re.findall(r'<td class="n">(?:<a [^>]*>)?([^<]*)', row.group(1))
    assert numbers[:4] == ["1", "1", "0", "1"]  # ready, scheduled, running, dead
    assert dead_id in overview.text and "ValueError: boom" in overview.text  # recent failures
    queue = web.get("/queue", params={"name": "default"}).text
    assert waiting.id in queue and "1, 2" in queue and "in 59m" in queue
    dead = web.get("/dead", params={"queue": "default"}).text
    assert dead_id in dead and "&#34;doomed&#34;, 0" in dead
    job = web.get("/job", params={"id": dead_id}).text
    assert 'class="status">failed' in job and "failed after 1 attempt(s)" in job
    assert web.get("/job", params={"id": "nope"}).status_code == 404
    assert "Requeue" not in dead  # no action forms without allow_actions


def test_every_value_is_escaped(app: Application) -> None:
    handle = app.add.delay(EVIL, {"k": EVIL})  # type: ignore[attr-defined]
    app.add.delay(EVIL, 1)  # type: ignore[attr-defined]
    kill(app, error=f"ValueError: {EVIL}")
    web = client(app, allow_actions=True)
    pages = [web.get(url, params=params).text for url, params in [
        ("/", {}), ("/queue", {"name": "default"}), ("/dead", {"queue": "default"}),
        ("/job", {"id": handle.id}), ("/queue", {"name": EVIL}), ("/job", {"id": EVIL}),
    ]]
    for page in pages:
        assert "<script>window" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in pages[1]
    assert "ValueError: &lt;script&gt;" in pages[0]


def test_actions_are_refused_without_allow_actions(app: Application) -> None:
    app.add.delay(1, 1)  # type: ignore[attr-defined]
    kill(app)
    web = client(app)
    token = csrf_of(client(app, allow_actions=True).get("/dead?queue=default").text)
    refused = web.post("/actions/requeue", data={"queue": "default", "csrf": token})
    assert refused.status_code == 403 and "--allow-actions" in refused.text
    assert app.broker.counts("default").dead == 1


def test_actions_need_this_process_csrf_token_and_post(app: Application) -> None:
    app.add.delay(1, 1)  # type: ignore[attr-defined]
    dead_id = kill(app)
    web = client(app, allow_actions=True)
    for form in [{"queue": "default"}, {"queue": "default", "csrf": "0" * 64},
                 {"queue": "default", "csrf": csrf_of(client(app, allow_actions=True)
                                                      .get("/dead?queue=default").text)}]:
        assert web.post("/actions/requeue", data=form).status_code == 403  # another process's
    assert web.get("/actions/requeue", params={"queue": "default"}).status_code == 405
    assert app.broker.counts("default").dead == 1
    token = csrf_of(web.get("/dead?queue=default").text)
    done = web.post("/actions/requeue", data={"queue": "default", "csrf": token,
                                               "id": dead_id, "back": "/dead?queue=default"})
    assert done.status_code == 303
    assert done.headers["location"].startswith("/dead?queue=default&notice=Requeued+1")
    assert app.broker.counts("default").ready == 1 and app.broker.counts("default").dead == 0
    elsewhere = web.post("/actions/purge", data={"queue": "default", "csrf": token,
                                                  "back": "//evil.example/"})
    assert elsewhere.headers["location"].startswith("/?notice=Purged+1")  # not off-site


def test_the_token_is_required_on_every_request(app: Application) -> None:
    web = client(app, token="s3cret")
    for url in ("/", "/static/dashboard.js", "/job?id=x"):
        assert web.get(url).status_code == 401
    assert web.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert web.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    login = web.get("/queue", params={"name": "a b", "token": "s3cret"})
    assert login.status_code == 303 and login.headers["location"] == "/queue?name=a+b"
    assert "httponly" in login.headers["set-cookie"].lower()
    assert web.get("/queue?name=a+b").status_code == 200  # the cookie now
    web.cookies.clear()
    assert web.get("/", params={"token": "wrong"}).status_code == 401


def test_links_follow_the_mount_path(app: Application) -> None:
    app.add.delay(1, 1)  # type: ignore[attr-defined]
    outer = Starlette(routes=[Mount("/ops/tinyq", app=create_app(app))])
    web = TestClient(outer)
    page = web.get("/ops/tinyq/").text
    assert 'href="/ops/tinyq/queue?name=default"' in page
    assert 'src="/ops/tinyq/static/dashboard.js"' in page
    assert web.get("/ops/tinyq/static/dashboard.js").status_code == 200
    assert web.get("/ops/tinyq/queue?name=default").status_code == 200


def test_throughput_adds_what_each_worker_finished() -> None:
    def worker(wid: str, processed: int) -> WorkerInfo:
        return WorkerInfo(wid, "h", 1, "0", ("default",), 1, 0.0, 0.0, processed)

    meter = Throughput(min_interval=2)
    meter.sample([worker("a", 100)], now=1000)  # first sight: its past is not counted
    meter.sample([worker("a", 130), worker("b", 7)], now=1030)
    meter.sample([worker("b", 12)], now=1031)  # a too soon: skipped
    meter.sample([worker("b", 12)], now=1070)  # a gone: stops adding, b added 5
    assert meter.per_minute(now=1095, buckets=3) == [0, 30, 5]  # 65 s ago, 25 s ago


def test_dashboard_refuses_a_public_host_without_a_token(app: Application) -> None:
    with pytest.raises(CommandError, match="--token"):
        admin.main(["dashboard", "-u", "memory://", "--host", "0.0.0.0"])


def test_dashboard_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    with pytest.raises(CommandError, match=r"pip install 'tinyq-core\[dashboard\]'"):
        admin.main(["dashboard", "-u", "memory://"])


def test_the_starlette_mount_example_of_dashboard_md_serves_the_pages(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "dashboard.md"
    [block] = [b for b in re.findall(r"```python\n(.*?)```", docs.read_text(), re.S)
               if "from starlette" in b]
    tasks = types.ModuleType("myproject.tasks")
    tasks.app = app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myproject", types.ModuleType("myproject"))
    monkeypatch.setitem(sys.modules, "myproject.tasks", tasks)
    namespace: dict[str, object] = {}
    exec(block, namespace)
    page = TestClient(namespace["web"]).get("/tinyq/")  # type: ignore[arg-type]
    assert page.status_code == 200 and 'href="/tinyq/workers"' in page.text


def test_one_dead_letter_is_deleted_from_its_row(app: Application) -> None:
    app.add.delay(1, 1)  # type: ignore[attr-defined]
    app.add.delay(2, 2)  # type: ignore[attr-defined]
    doomed, kept = kill(app), kill(app)
    web = client(app, allow_actions=True)
    page = web.get("/dead", params={"queue": "default"}).text
    # One "Delete" form per row, each naming its dead letter, beside "Delete all".
    assert re.search(rf'name="id" value="{doomed}">\s*<button type="submit" '
                     r'class="danger">Delete</button>', page)
    done = web.post("/actions/purge-dead", data={"queue": "default", "csrf": csrf_of(page),
                                                  "id": doomed})
    assert done.status_code == 303 and "Deleted+1" in done.headers["location"]
    assert [d.message.id for d in app.broker.dead_letters("default")] == [kept]


def test_a_running_jobs_progress_is_on_its_page(app: Application) -> None:
    from tinyq_core import current_job

    from support.worker_thread import running_worker

    reported, finish = threading.Event(), threading.Event()

    @app.task(name="long")
    def long() -> None:
        current_job().set_progress({"done": 3, "of": 10})
        reported.set()
        finish.wait(10)

    handle = long.delay()
    with running_worker(app, concurrency=1):
        assert reported.wait(10)
        page = client(app).get("/job", params={"id": handle.id}).text
        finish.set()
    assert 'class="status">started' in page
    assert "&#34;done&#34;: 3" in page and "&#34;of&#34;: 10" in page
