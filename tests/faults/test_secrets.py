"""No secret ever appears in a log line or an error message: not the Redis password of the
broker URI, not the signing key. A real ``tinyq -l debug -v`` worker on a password-protected
Redis goes through bad messages, a failing job and a Redis restart; producers and the CLI meet
unreachable and misconfigured brokers; every log line, stderr and exception text (``str``,
``repr``, the whole ``__cause__``/``__context__`` chain and the formatted traceback) is
searched for the secrets."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tinyq_core import (
    Application,
    BrokerUnavailable,
    ConfigurationError,
    Job,
    JobFailed,
    TinyqError,
)

from redis_server import RedisServer, free_port
from support.project import AppProject
from support.waiting import wait_until
from support.worker_thread import running_worker

PASSWORD = "pw-SECRET-123"
KEY = "key-SECRET-456"
OTHER_KEY = "other-SECRET-789"
WRONG_PASSWORD = "wrong-SECRET-000"
SECRETS = (PASSWORD, KEY, OTHER_KEY, WRONG_PASSWORD)

APP = '''
import os
from tinyq_core import Application

app = Application(os.environ["TINYQ_URL"], secret_key=os.environ["TINYQ_KEY"])


@app.task(name="s.echo")
def echo(x):
    return x


@app.task(name="s.fail")
def fail():
    raise ValueError("this job fails on purpose")
'''


def exception_texts(exc: BaseException) -> list[str]:
    """Everything an exception can show: str, repr and args of it and of every exception in
    its chain (suppressed contexts included), and the formatted traceback."""
    texts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        texts += [str(e), repr(e), repr(e.args)]
        todo += [e.__cause__, e.__context__]
    return texts


def assert_no_secret(texts: list[str], where: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in {where}: {text[-2000:]}"


def capture(call: Callable[[], object], kind: type[BaseException]) -> BaseException:
    with pytest.raises(kind) as info:
        call()
    return info.value


# -- a worker through many errors ------------------------------------------------------------


@pytest.fixture
def locked_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True, extra=("--requirepass", PASSWORD)).start()
    yield server
    server.close()


def test_a_debug_worker_through_errors_and_a_restart_logs_no_secret(
    tmp_path: Path, locked_server: RedisServer
) -> None:
    port = locked_server.port
    project = AppProject(tmp_path, APP, url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
                         env={"TINYQ_KEY": KEY})
    url, ns = project.url, project.ns
    assert url is not None
    proc = project.start("-l", "debug", "-v", "-w", "2", "-u", url, stderr_apart=True)
    texts: list[str] = []
    try:
        app = Application(url, secret_key=KEY)
        echo = app.task(name="s.echo")(lambda x: x)
        fail = app.task(name="s.fail")(lambda: None)
        assert echo.delay(1).result(timeout=20) == 1

        # Bad messages, written straight into the stream.
        raw = redis.Redis(port=port, password=PASSWORD)
        stream = f"{{{ns}:default}}:stream"
        genuine = app.codec.encode_job(Job(id="tampered", task_name="s.echo", args=(1,)))
        raw.xadd(stream, {"id": "tampered", "b": genuine.replace(b"[1]", b"[2]"), "a": 0})
        foreign = Application("memory://", secret_key=OTHER_KEY).codec.encode_job(
            Job(id="foreign", task_name="s.echo", args=(1,)))
        raw.xadd(stream, {"id": "foreign", "b": foreign, "a": 0})
        raw.xadd(stream, {"id": "unsigned", "b": b'{"id":"unsigned","task":"s.echo"}', "a": 0})
        unknown = app.send("s.not_deployed")
        failing = fail.delay()
        for job_id in (unknown.id, failing.id):
            exc = capture(lambda job_id=job_id: app.job(job_id).result(timeout=10), JobFailed)
            texts += exception_texts(exc)
            texts.append(getattr(exc, "traceback", ""))
        # The unverified three get a dead letter but no result: their ids are only claims.
        wait_until(lambda: {d.message.id for d in app.broker.dead_letters("default")} == {
            "tampered", "foreign", "unsigned", unknown.id, failing.id},
            message="all five dead-lettered")
        texts += [d.reason + d.error for d in app.broker.dead_letters("default")]

        # Redis goes away for two seconds; producers meanwhile get BrokerUnavailable.
        handle = echo.delay(2)
        assert handle.result(timeout=10) == 2
        locked_server.stop()
        stopped = time.monotonic()
        texts += exception_texts(capture(lambda: echo.delay(3), BrokerUnavailable))
        texts += exception_texts(capture(lambda: handle.result(timeout=1), BrokerUnavailable))
        texts += exception_texts(capture(handle.status, BrokerUnavailable))
        time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped)))
        assert proc.poll() is None
        locked_server.start()  # same port, same password
        assert echo.delay(4).result(timeout=30) == 4
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                project.stop(proc)
        project.close()  # kills it if it did not stop
    stdout, stderr = project.output(proc), project.errors(proc)
    assert proc.returncode == 0, stderr[-3000:]
    # The errors were there to be logged, at debug level with tracebacks...
    assert "Got a job: <Job" in stderr and "DEBUG" in stderr
    assert stderr.count("Dead-lettering message") == 4, stderr[-3000:]
    assert "bad signature" in stderr and "message is not signed" in stderr
    assert "unknown task 's.not_deployed'" in stderr
    assert "ValueError: this job fails on purpose" in stderr
    assert "Broker error, retrying with backoff" in stderr
    assert "Traceback" in stderr  # -v: exc_info with the broker error
    assert "Broker is reachable again" in stderr
    assert f"redis://:***@127.0.0.1:{port}" in stderr
    # ...and no secret in any of it.
    assert_no_secret([stdout, stderr], "the worker's output")
    assert_no_secret(texts, "an exception raised to the producer")


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[AppProject]:
    """An app with a signing key, for the ``tinyq`` command to load."""
    p = AppProject(tmp_path, f"from tinyq_core import Application\n"
                             f"app = Application(secret_key={KEY!r})\n")
    yield p
    p.close()


def test_the_cli_on_an_unreachable_broker(project: AppProject) -> None:
    port = free_port()
    out = project.run("-l", "debug", "-v", "-u", f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
                      script=True)
    assert out.returncode == 1
    assert f"tinyq: error: cannot reach the broker at redis://:***@127.0.0.1:{port}/0" in (
        out.stderr)
    assert "Broker not reachable yet" in out.stderr  # the start-up retries were logged
    assert "Traceback" in out.stderr  # -v
    assert_no_secret([out.stdout, out.stderr], "the CLI's output")


def test_the_cli_with_a_wrong_password(project: AppProject, locked_server: RedisServer) -> None:
    uri = f"redis://:{WRONG_PASSWORD}@127.0.0.1:{locked_server.port}/0"
    out = project.run("-v", "-u", uri, script=True)
    assert out.returncode == 1
    assert "tinyq: error: cannot reach the broker at redis://:***@127.0.0.1" in out.stderr
    assert_no_secret([out.stdout, out.stderr], "the CLI's output")


def test_the_cli_with_a_malformed_uri(project: AppProject) -> None:
    for uri in (f"redis://:{PASSWORD}@127.0.0.1:99999/0",
                f"redis://:{PASSWORD}@127.0.0.1:6379/0?db=x",
                f"redis://:{PASSWORD}@127.0.0.1:6379/0?visiblity_timeout=1"):
        out = project.run("-v", "-u", uri, script=True)
        assert out.returncode == 1, out.stderr
        assert "tinyq: error: " in out.stderr
        assert_no_secret([out.stdout, out.stderr], f"the CLI's output for {uri}")


# -- producers -------------------------------------------------------------------------------


def test_broker_unavailable_at_the_producer() -> None:
    port = free_port()
    app = Application(f"redis://user:{PASSWORD}@127.0.0.1:{port}/0", secret_key=KEY)
    f = app.task(name="s.f")(lambda: None)
    texts: list[str] = []
    for call in (f.delay, lambda: f.map([(), ()]), lambda: app.job("x").result(timeout=1),
                 lambda: app.job("x").status(), lambda: app.broker.size("default"),
                 lambda: app.broker.dead_letters("default"), app.broker.ping):
        exc = capture(call, BrokerUnavailable)
        assert f"redis://user:***@127.0.0.1:{port}/0" in str(exc)
        texts += exception_texts(exc)
    assert_no_secret(texts, "BrokerUnavailable")


def test_a_wrong_password_at_the_producer(locked_server: RedisServer) -> None:
    app = Application(f"redis://:{WRONG_PASSWORD}@127.0.0.1:{locked_server.port}/0")
    f = app.task(name="s.f")(lambda: None)
    exc = capture(f.delay, TinyqError)
    assert "***" in str(exc)
    assert_no_secret(exception_texts(exc), "the error for a wrong password")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?bogus=1", "unknown option(s) in the Redis URI: bogus"),
        ("?visibility_timeout=soon", "visibility_timeout must be a number"),
        ("?visibility_timeout=0", "visibility_timeout must be more than 0"),
        ("?db=x", "Invalid value for 'db'"),
        ("?socket_timeout=abc", "Invalid value for 'socket_timeout'"),
        ("?prefix={x}", "prefix must be a non-empty name without braces"),
    ],
)
def test_configuration_errors_at_the_producer(query: str, message: str) -> None:
    exc = capture(lambda: Application(f"redis://:{PASSWORD}@127.0.0.1:6379/0{query}").broker,
                  ConfigurationError)
    assert message in str(exc)
    assert_no_secret(exception_texts(exc), "a ConfigurationError")


def test_a_bad_port_is_a_configuration_error_without_the_password() -> None:
    for netloc in ("127.0.0.1:99999", "127.0.0.1:notaport"):
        uri = f"redis://:{PASSWORD}@{netloc}/0"
        exc = capture(lambda uri=uri: Application(uri).broker, ConfigurationError)
        assert f"bad Redis URI 'redis://:***@{netloc}/0'" in str(exc)
        assert_no_secret(exception_texts(exc), "a ConfigurationError")


def test_the_signing_key_is_not_in_a_result_error(locked_server: RedisServer) -> None:
    """A producer with another key reads a result it cannot verify: the error names neither
    key."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked_server.port}/0?prefix=k{uuid.uuid4().hex[:6]}"
    worker_app = Application(url, secret_key=KEY)
    echo = worker_app.task(name="s.echo")(lambda x: x)
    h = echo.delay(1)
    assert worker_app.worker(concurrency=1).run(burst=True) == 0
    assert h.result(timeout=5) == 1
    reader = Application(url, secret_key=OTHER_KEY)
    exc = capture(lambda: reader.job(h.id).result(timeout=5), JobFailed)
    assert "unreadable result: bad signature" in str(exc)
    assert_no_secret(exception_texts(exc), "an unreadable result")


# -- passwords outside the userinfo -----------------------------------------------------------
# Found by this suite (fixed in 9d28702): redact_uri hid only the userinfo password, so one
# given as the ?password= query option (redis-py's documented form for unix:// sockets) was
# shown in errors, logs and the CLI's message; Application's repr showed the URI unredacted.


@pytest.mark.parametrize("scheme", ["redis", "unix"])
def test_a_password_in_the_query_string_is_redacted(scheme: str, project: AppProject) -> None:
    if scheme == "redis":
        uri = f"redis://127.0.0.1:{free_port()}/0?password={PASSWORD}"
    else:
        uri = f"unix://{project.path}/no.sock?db=0&password={PASSWORD}"
    app = Application(uri)
    f = app.task(name="s.f")(lambda: None)
    exc = capture(f.delay, BrokerUnavailable)
    assert "password=***" in str(exc)
    out = project.run("-v", "-u", uri, script=True)
    assert out.returncode == 1
    assert "tinyq: error: cannot reach the broker at" in out.stderr
    assert "password=***" in out.stderr
    assert_no_secret(exception_texts(exc), "BrokerUnavailable")
    assert_no_secret([out.stdout, out.stderr], "the CLI's output")


def test_a_query_password_on_a_running_worker_is_redacted(locked_server: RedisServer) -> None:
    """Over the Unix socket with ?password=: the worker's outage log line is redacted."""
    ns = "secq" + uuid.uuid4().hex[:6]
    uri = f"unix://{locked_server.socket}?db=0&password={PASSWORD}&prefix={ns}"
    app = Application(uri)
    echo = app.task(name="s.echo")(lambda x: x)
    h = echo.delay(1)
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tinyq")
    logger.addHandler(handler)
    try:
        with running_worker(app, concurrency=1):
            assert h.result(timeout=10) == 1
            locked_server.stop()
            wait_until(lambda: any("Broker error" in r for r in records), 10,
                       message="the worker to log the outage")
            locked_server.start()
            assert echo.delay(2).result(timeout=30) == 2
    finally:
        logger.removeHandler(handler)
        app.close()
    assert any("Broker error" in r and "password=***" in r for r in records), records
    assert_no_secret(records, "the worker's log")


def test_the_application_repr_hides_the_password() -> None:
    for uri in (f"redis://:{PASSWORD}@127.0.0.1:6379/0", f"redis://127.0.0.1/0?password={PASSWORD}"):
        app = Application(uri)
        assert "***" in repr(app) and "***" in repr(app.broker)
        assert_no_secret([repr(app), repr(app.broker), str(app)], "a repr")


# -- bugs ------------------------------------------------------------------------------------


def test_a_percent_encoded_password_option_is_redacted() -> None:
    uri = f"redis://127.0.0.1:{free_port()}/0?pass%77ord={PASSWORD}"
    app = Application(uri)
    f = app.task(name="s.f")(lambda: None)
    exc = capture(f.delay, BrokerUnavailable)
    assert_no_secret([*exception_texts(exc), repr(app)], "BrokerUnavailable and the repr")


def test_an_option_for_another_connection_kind_is_a_configuration_error(
    project: AppProject,
) -> None:
    uri = f"redis://127.0.0.1:{free_port()}/0?ssl_password={PASSWORD}"
    out = project.run("-u", uri, script=True)
    assert_no_secret([out.stdout, out.stderr], "the CLI's output")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    app = Application(uri)
    f = app.task(name="s.f")(lambda: None)
    exc = capture(f.delay, Exception)
    assert_no_secret(exception_texts(exc), "the error")
    assert isinstance(exc, ConfigurationError), repr(exc)


def test_an_unparsable_uri_is_a_configuration_error() -> None:
    exc = capture(lambda: Application(f"redis://:{PASSWORD}@[::1/0").broker, Exception)
    assert_no_secret(exception_texts(exc), "the error")
    assert isinstance(exc, ConfigurationError), repr(exc)
