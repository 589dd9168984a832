"""The app files of the async benchmarks (`async_drain`, `async_enqueue`): one per system, each
written as `bench_app.py` into a temporary folder and run by that system's interpreter (the
peers' from their own venvs, see `peer_envs`), so none of them imports another's packages.

Every app has the same job: `await asyncio.sleep(0.05)`, one PING through a redis.asyncio client
made once per event loop, and an RPUSH of "i start end" to bench:spans (how the drain checks
that each job ran once, and measures first start to last end). Every app also has
`setup()` -> (enqueue one job, close), used by `fill(n)` (the drain's jobs, untimed) and
`rate(n)` (jobs/s enqueued one by one, each awaited, from a running loop).
Environment: BENCH_URL (the system's broker URL), BENCH_REDIS (for the job's own client),
BENCH_CONCURRENCY (jobs at a time in the worker, where the app sets it).
"""

from __future__ import annotations

PRELUDE = '''
import asyncio, os, sys, time
import redis.asyncio

URL = os.environ["BENCH_URL"]
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "10"))
_clients = {}


def client():
    loop = asyncio.get_running_loop()  # one client per event loop
    if loop not in _clients:
        # a connection per job at a time (redis-py 6+ caps a pool at 100 by default)
        _clients[loop] = redis.asyncio.Redis.from_url(os.environ["BENCH_REDIS"],
                                                      max_connections=CONCURRENCY + 10)
    return _clients[loop]


async def work(i):
    began = time.time()
    await asyncio.sleep(0.05)
    await client().ping()
    await client().rpush("bench:spans", f"{i} {began} {time.time()}")
'''

FILL = '''

def fill(n):
    async def go():
        enqueue, close = await setup()
        try:
            for i in range(n):
                await enqueue(i)
        finally:
            await close()
    asyncio.run(go())
'''

RATE = '''

def rate(n):
    async def go():
        enqueue, close = await setup()
        try:
            await enqueue(-1)  # warm-up: connect, load scripts, create groups
            t0 = time.perf_counter()
            for i in range(n):
                await enqueue(i)
            return n / (time.perf_counter() - t0)
        finally:
            await close()
    print(asyncio.run(go()))
'''

TINYQ = PRELUDE + '''
from tinyq_core import Application

app = Application(URL)


@app.task(name="io")
async def io(i):
    await work(i)


async def setup():
    async def close():
        await app.aclose()
    return io.adelay, close


def fill(n):  # the bulk API: the jobs are not what is timed
    io.map([(i,) for i in range(n)])
    app.close()
''' + RATE

ARQ = PRELUDE + '''
import logging
from arq import create_pool
from arq.connections import RedisSettings

REDIS_SETTINGS = RedisSettings.from_dsn(URL)


async def io(ctx, i):
    await work(i)


async def quiet(ctx):  # arq logs every job at INFO; the others run at warning level
    logging.getLogger("arq").setLevel(logging.WARNING)


class WorkerSettings:
    functions = [io]
    redis_settings = REDIS_SETTINGS
    max_jobs = CONCURRENCY
    poll_delay = 0.01  # arq polls a sorted set, every 0.5 s by default
    on_startup = quiet


async def setup():
    pool = await create_pool(REDIS_SETTINGS)
    return (lambda i: pool.enqueue_job("io", i)), pool.aclose
''' + FILL + RATE

TASKIQ = PRELUDE + '''
from taskiq_redis import RedisStreamBroker

# the stream broker: a consumer group, each message acknowledged after its task ran and
# claimed back when left unacknowledged (ListQueueBroker pops with BRPOP: at most once)
broker = RedisStreamBroker(url=URL)


@broker.task(task_name="io")
async def io(i):
    await work(i)


async def setup():
    await broker.startup()
    return io.kiq, broker.shutdown
''' + FILL + RATE

SAQ = PRELUDE + '''
from saq.queue.redis import RedisQueue

# Queue.from_url's client has redis-py's default pool of 100 connections: at concurrency 100
# SAQ's blocking dequeues alone take them all ("Too many connections")
queue = RedisQueue(redis.asyncio.from_url(URL, max_connections=2 * CONCURRENCY + 20))


async def io(ctx, *, i):
    await work(i)


settings = {
    "queue": queue,
    "functions": [io],
    "concurrency": CONCURRENCY,
    "burst": True,  # exit once the queue is empty
    "dequeue_timeout": 0.5,  # burst mode needs one: how long an empty dequeue waits
}


async def setup():
    await queue.connect()
    return (lambda i: queue.enqueue("io", i=i)), queue.disconnect
''' + FILL + RATE
