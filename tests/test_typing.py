"""Tasks are generic over their function's signature: a type checker catches bad arguments."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SNIPPET = '''
from tinyq_core import Application, JobHandle

app = Application("memory://")

@app.task()
def add(m: int, n: int) -> int:
    return m + n

@app.task
def shout(text: str) -> str:
    return text.upper()

h = add.delay(1, 2)
reveal_type(h)
reveal_type(h.result(timeout=1))
reveal_type(add(1, 2))
reveal_type(shout.map([("a",)]))
add.delay(1, "x")  # line 19: wrong type
shout.delay(3)  # line 20: wrong type
add.apply_async(args=(1, 2), countdown=1.5)

@app.task(queue="io")
async def fetch(url: str) -> bytes:
    return url.encode()

reveal_type(fetch.delay("u").result())  # line 27
'''


def test_mypy_checks_task_arguments_and_results(tmp_path: Path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(SNIPPET))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
         str(root / "pyproject.toml"), str(path)],
        capture_output=True, text=True, cwd=root, timeout=300,
    ).stdout
    assert 'Revealed type is "tinyq_core._handle.JobHandle[int]"' in out
    assert out.count('Revealed type is "int"') == 2
    assert 'Revealed type is "list[tinyq_core._handle.JobHandle[str]]"' in out
    bad = 'error: Argument {} to "delay" of "Task" has incompatible type "{}"'
    assert "snippet.py:19: " + bad.format(2, "str") in out
    assert "snippet.py:20: " + bad.format(1, "int") in out
    assert 'snippet.py:27: note: Revealed type is "bytes"' in out  # async: the awaited value
    assert out.count("error:") == 2, out


ASYNC_SNIPPET = '''
from tinyq_core import Application

app = Application("memory://")

@app.task()
def add(m: int, n: int) -> int:
    return m + n

@app.task(queue="io")
async def fetch(url: str) -> bytes:
    return url.encode()

async def main() -> None:
    h = await add.adelay(1, 2)
    reveal_type(h)
    reveal_type(await h.aresult(timeout=1))
    reveal_type(await h.astatus())
    reveal_type(await add.amap([(1, 2)]))
    reveal_type(await add.aapply_async((1, 2), countdown=1.5))
    reveal_type(await (await fetch.adelay("u")).aresult())
    reveal_type(await app.asend("add", 1, 2))
    reveal_type(await h.acancel(grace=1.0))
    reveal_type(await app.acancel(h.id, grace=None))
    reveal_type(await h.aprogress())
    await add.adelay(1, "x")  # line 26: wrong type
'''


def test_mypy_checks_the_awaitable_api_like_the_blocking_one(tmp_path: Path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(ASYNC_SNIPPET))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
         str(root / "pyproject.toml"), str(path)],
        capture_output=True, text=True, cwd=root, timeout=300,
    ).stdout
    assert 'Revealed type is "tinyq_core._handle.JobHandle[int]"' in out
    assert 'Revealed type is "int"' in out
    assert "Literal['queued'] | Literal['scheduled']" in out  # JobStatus
    assert out.count('Revealed type is "list[tinyq_core._handle.JobHandle[int]]"') == 1
    assert out.count('Revealed type is "tinyq_core._handle.JobHandle[int]"') == 2
    assert 'Revealed type is "bytes"' in out  # async task: the awaited value
    assert 'Revealed type is "tinyq_core._handle.JobHandle[Any]"' in out
    assert out.count("Literal['cancelled'] | Literal['cancelling'] | Literal['finished']") == 2
    assert ('snippet.py:26: error: Argument 2 to "adelay" of "AwaitableEnqueue" has '
            'incompatible type "str"') in out, out
    assert out.count("error:") == 1, out
