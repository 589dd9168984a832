"""The hello world of tinyq, on the in-memory broker: no server needed.

    python examples/hello.py

Enqueues 30 jobs, runs a worker with 4 threads in this process, prints every result.
With Redis, the same code runs with Application("redis://") and a separate `tinyq -l info`.
"""

from __future__ import annotations

import threading

from tinyq_core import Application

app = Application("memory://")


@app.task()
def add(m: int, n: int) -> int:
    return m + n


def main() -> None:
    handles = [add.delay(m, n) for m in range(10) for n in range(3)]
    print(f"enqueued {len(handles)} jobs")
    worker = app.worker(concurrency=4)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        for h, (m, n) in zip(handles, [(m, n) for m in range(10) for n in range(3)], strict=True):
            print(f"add({m}, {n}) = {h.result(timeout=10)}")
    finally:
        worker.stop()
        thread.join()
    print("all 30 jobs done")


if __name__ == "__main__":
    main()
