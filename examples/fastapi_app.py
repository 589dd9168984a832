"""tinyq in a FastAPI app: enqueue from an endpoint, await a result in another, without
blocking the event loop (docs/asyncio.md).

    pip install fastapi uvicorn
    redis-server &                               # TINYQ_URL=redis://host:port/0 elsewhere
    tinyq -a fastapi_app.queue -w 4 &            # a worker, from this folder
    uvicorn fastapi_app:api                      # the web app
    curl -X POST 'localhost:8000/add?m=1&n=2'    # {"job_id": "..."}
    curl 'localhost:8000/jobs/<job_id>?wait=5'   # {"status": "succeeded", "result": 3}
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException

from tinyq_core import Application, JobFailed

queue = Application("redis://")  # $TINYQ_URL, when set, overrides it


@queue.task(name="add")
def add(m: int, n: int) -> int:
    return m + n


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    yield
    # The awaitable API opened a connection pool on this loop: close it with the app.
    await queue.aclose()


api = FastAPI(lifespan=lifespan)


@api.post("/add")
async def enqueue_add(m: int, n: int) -> dict[str, str]:
    handle = await add.adelay(m, n)
    return {"job_id": handle.id}


@api.get("/jobs/{job_id}")
async def job_result(job_id: str, wait: float = 0.0) -> dict[str, Any]:
    """The job's result, waiting up to ``wait`` seconds for it (the loop serves other
    requests meanwhile)."""
    handle = queue.job(job_id, "default")
    try:
        return {"status": "succeeded", "result": await handle.aresult(timeout=wait)}
    except TimeoutError:
        status = await handle.astatus()
        if status == "unknown":
            raise HTTPException(404, f"no job {job_id}") from None
        return {"status": status}
    except JobFailed as exc:
        return {"status": "failed", "error": str(exc)}
