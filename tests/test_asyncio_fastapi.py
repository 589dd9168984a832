"""examples/fastapi_app.py through httpx's ASGI transport, with its lifespan, on the memory
broker and on a throwaway Redis, with a real worker thread."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from redis_server import RedisServer
from support.worker_thread import running_worker

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


def load_example(monkeypatch: pytest.MonkeyPatch, url: str) -> ModuleType:
    """A fresh copy of the example, its Application on ``url`` ($TINYQ_URL overrides)."""
    monkeypatch.setenv("TINYQ_URL", url)
    name = f"fastapi_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exercise(example: ModuleType) -> dict[str, Any]:
    """Enqueue through the app; wait on a job nobody runs while other requests are served;
    then run a worker and await the result through the app."""
    api, queue = example.api, example.queue
    seen: dict[str, Any] = {}

    async def main() -> None:
        transport = httpx.ASGITransport(app=api)
        async with api.router.lifespan_context(api), httpx.AsyncClient(
                transport=transport, base_url="http://app") as http:
            job_id = (await http.post("/add", params={"m": 1, "n": 2})).json()["job_id"]
            waiting = asyncio.create_task(http.get(f"/jobs/{job_id}", params={"wait": 1.0}))
            await asyncio.sleep(0.1)
            others = [(await http.post("/add", params={"m": i, "n": i})).status_code
                      for i in range(5)]
            seen["served_while_waiting"] = not waiting.done() and others == [200] * 5
            seen["not_done"] = (await waiting).json()
            with running_worker(queue):
                seen["done"] = (await http.get(f"/jobs/{job_id}",
                                               params={"wait": 5.0})).json()
            seen["missing"] = (await http.get("/jobs/nope")).status_code
            seen["pools"] = len(queue._producer.aio._clients)
        seen["pools_after"] = len(queue._producer.aio._clients)

    asyncio.run(main())
    queue.close()
    return seen


def check(seen: dict[str, Any]) -> None:
    assert seen["served_while_waiting"], "a result wait blocked the other requests"
    assert seen["not_done"] == {"status": "queued"}
    assert seen["done"] == {"status": "succeeded", "result": 3}
    assert seen["missing"] == 404
    assert (seen["pools"], seen["pools_after"]) == (1, 0)  # closed by the lifespan


def test_the_fastapi_example_on_the_memory_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    check(exercise(load_example(monkeypatch, "memory://")))


def test_the_fastapi_example_on_redis(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    example = load_example(monkeypatch, f"{redis_server.url}?prefix=f{uuid.uuid4().hex[:8]}")
    assert type(example.queue.broker).__name__ == "RedisBroker"
    check(exercise(example))


def test_docs_asyncio_md_shows_the_example_as_it_is() -> None:
    """The page's FastAPI block is the example file's code (the file adds its docstring)."""
    from test_docs_examples import doc_block

    block = doc_block("asyncio.md", "from collections.abc import AsyncIterator")
    assert block in EXAMPLE.read_text()
    assert block.count("\n") > 30  # the whole app, not a fragment
