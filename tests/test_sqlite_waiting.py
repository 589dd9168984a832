"""The SQLite broker's waits wired to the wake-ups: a blocked reserve or result wait returns
soon after another broker on the file commits (not at a polling interval), a delayed or
recovered job wakes it when it becomes due, and closing the broker ends every thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tinyq_core import Message, Result
from tinyq_core.plugin import SettleRequest
from tinyq_sqlite import SqliteBroker, _waiting
from tinyq_sqlite._wakeup import open_wakeup

SOON = 0.25  # generous for a loaded 2-core machine; the idle latency measured is ~0.5 ms


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SqliteBroker, SqliteBroker]]:
    """A waiting broker and a writing one: two connections and two wake-up objects, as two
    processes would have."""
    uri = f"sqlite:///{tmp_path / 'q.db'}"
    waiter, writer = SqliteBroker(uri), SqliteBroker(uri)
    yield waiter, writer
    waiter.close()
    writer.close()


class _Later(threading.Thread):
    """Runs ``action`` in ``delay`` seconds; ``done`` is when it returned (its COMMIT)."""

    def __init__(self, delay: float, action: Callable[[], object]) -> None:
        super().__init__()
        self.delay, self.action, self.done = delay, action, float("inf")
        self.start()

    def run(self) -> None:
        time.sleep(self.delay)
        self.action()
        self.done = time.monotonic()


def _timed_reserve(broker: SqliteBroker, timeout: float = 5.0) -> tuple[list[str], float]:
    """The ids reserved and the monotonic time the reserve returned."""
    got = broker.reserve(["q"], 10, timeout)
    return [d.id for d in got], time.monotonic()


def test_an_enqueue_wakes_a_blocked_reserve_at_once(
        pair: tuple[SqliteBroker, SqliteBroker]) -> None:
    waiter, writer = pair
    thread = _Later(0.2, lambda: writer.enqueue([Message("a", "q", b"")]))
    ids, returned = _timed_reserve(waiter)
    thread.join()
    assert ids == ["a"]
    assert returned - thread.done < SOON
    assert waiter.poll_interval is None  # events, not polling, on this machine


def test_a_delayed_job_enqueued_while_waiting_is_delivered_when_due(
        pair: tuple[SqliteBroker, SqliteBroker]) -> None:
    # The waiter had no due time to cap its wait at; the enqueue's notify makes it look and
    # learn one.
    waiter, writer = pair
    due = time.time() + 0.6
    thread = _Later(0.1, lambda: writer.enqueue([Message("later", "q", b"", due=due)]))
    ids, _ = _timed_reserve(waiter)
    thread.join()
    assert ids == ["later"]
    assert due <= time.time() < due + SOON


def test_a_nack_with_a_delay_and_a_recovery_wake_a_blocked_reserve(
        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'q.db'}?visibility_timeout=0.3"
    waiter, writer = SqliteBroker(uri), SqliteBroker(uri)
    try:
        writer.enqueue([Message("n", "q", b""), Message("r", "q", b"")])
        nacked, _expiring = writer.reserve(["q"], 2, 0)  # this lease is left to expire
        due = time.time() + 0.4
        writer.nack(nacked, delay=0.4)
        ids, _ = _timed_reserve(waiter)
        assert ids == ["n"] and due <= time.time() < due + SOON
        # The other lease expired meanwhile: the writer's recover commits and wakes us.
        thread = _Later(0.2, lambda: writer.recover(["q"]))
        ids, returned = _timed_reserve(waiter)
        thread.join()
        assert ids == ["r"] and returned - thread.done < SOON
    finally:
        waiter.close()
        writer.close()


def test_requeued_dead_letters_wake_a_blocked_reserve(
        pair: tuple[SqliteBroker, SqliteBroker]) -> None:
    waiter, writer = pair
    writer.enqueue([Message("d", "q", b"")])
    (delivery,) = writer.reserve(["q"], 1, 0)
    writer.dead_letter(delivery, "failed")
    thread = _Later(0.2, lambda: writer.requeue_dead_letters("q"))
    ids, returned = _timed_reserve(waiter)
    thread.join()
    assert ids == ["d"] and returned - thread.done < SOON


def test_a_stored_result_wakes_a_blocked_get(pair: tuple[SqliteBroker, SqliteBroker]) -> None:
    waiter, writer = pair
    thread = _Later(0.2, lambda: writer.result_backend().store(
        [Result("j", b"42", "default")], 60))
    result = waiter.result_backend().get("j", timeout=5)
    returned = time.monotonic()
    thread.join()
    assert result is not None and result.body == b"42"
    assert returned - thread.done < SOON


def test_a_result_stored_with_the_ack_wakes_a_blocked_get(
        pair: tuple[SqliteBroker, SqliteBroker]) -> None:
    waiter, writer = pair
    writer.enqueue([Message("j", "default", b"")])
    (delivery,) = writer.reserve(["default"], 1, 0)
    request = SettleRequest(acks=[delivery], results=[Result("j", b"ok", "default")],
                            result_ttl=60, queues=[], count=0, timeout=0)
    thread = _Later(0.2, lambda: writer.settle_and_reserve(request))
    result = waiter.result_backend().get("j", timeout=5)
    returned = time.monotonic()
    thread.join()
    assert result is not None and returned - thread.done < SOON


def test_the_polling_fallback_still_wakes_a_blocked_reserve(
        pair: tuple[SqliteBroker, SqliteBroker], monkeypatch: pytest.MonkeyPatch) -> None:
    # Where neither inotify nor unix sockets work: PRAGMA data_version every poll_interval.
    monkeypatch.setattr(_waiting, "open_wakeup",
                        lambda path, channel, interval: open_wakeup(
                            path, channel, kind="poll", interval=interval))
    waiter, writer = pair
    thread = _Later(0.2, lambda: writer.enqueue([Message("p", "q", b"")]))
    ids, returned = _timed_reserve(waiter)
    thread.join()
    assert ids == ["p"] and returned - thread.done < SOON
    assert waiter.poll_interval == 0.005


def _wakeup_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tinyq-sqlite-wakeup")]


def test_close_ends_the_listener_threads_and_wakes_the_waiters(tmp_path: Path) -> None:
    before = set(_wakeup_threads())
    broker = SqliteBroker(f"sqlite:///{tmp_path / 'q.db'}")
    waits: list[float] = []

    def wait_for_a_job() -> None:
        start = time.monotonic()
        broker.reserve(["q"], 1, 30)
        waits.append(time.monotonic() - start)

    def wait_for_a_result() -> None:
        start = time.monotonic()
        broker.result_backend().get("nothing", timeout=30)
        waits.append(time.monotonic() - start)

    threads = [threading.Thread(target=wait_for_a_job),
               threading.Thread(target=wait_for_a_result)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert len(set(_wakeup_threads()) - before) == 2  # one listener per channel
    broker.close()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads)
    assert len(waits) == 2 and max(waits) < 5  # released by the close, not their timeouts
    assert set(_wakeup_threads()) - before == set()


def test_a_notifier_wakes_inotify_and_socket_waiters_alike_and_starts_no_thread(
        tmp_path: Path) -> None:
    # A process whose inotify instances ran out waits on a socket: a writer using inotify
    # must still wake it. The writer's side listens to nothing.
    from tinyq_sqlite._notify import Notifier

    db = str(tmp_path / "q.db")
    notifier = Notifier(db, "jobs")
    notifier.notify()  # nobody waits yet: it creates nothing
    assert not (tmp_path / "q.db.wake").exists()
    (tmp_path / "q.db.wake").mkdir()
    notifier.notify()  # lists no socket, and keeps that listing until the folder changes
    waiters = [open_wakeup(db, "jobs", kind="inotify"), open_wakeup(db, "jobs", kind="socket")]
    try:
        snapshots = [w.generation() for w in waiters]
        threads = threading.active_count()
        notifier.notify()
        assert threading.active_count() == threads
        assert all(w.wait(2.0, since) for w, since in zip(waiters, snapshots, strict=True))
    finally:
        for w in waiters:
            w.close()
        notifier.close()


def test_a_blocking_wait_on_a_missing_folder_is_the_clear_error_and_creates_nothing(
        tmp_path: Path) -> None:
    # The wake-up folder sits beside the database: opening it first would create the folder.
    from tinyq_core import ConfigurationError

    broker = SqliteBroker(f"sqlite:///{tmp_path / 'missing' / 'q.db'}")
    with pytest.raises(ConfigurationError, match="does not exist"):
        broker.reserve(["q"], 1, 1.0)
    with pytest.raises(ConfigurationError, match="does not exist"):
        broker.result_backend().get("j", timeout=1.0)
    assert not (tmp_path / "missing").exists()
    broker.close()


def test_a_lost_notification_costs_a_waiter_at_most_the_recheck(
        pair: tuple[SqliteBroker, SqliteBroker], monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that cannot write to <db>.wake/ (another user's folder) notifies nobody: a
    # get(timeout=None) must still see the result, at its next look.
    from tinyq_sqlite._notify import Notifier

    waiter, writer = pair
    waiter.result_backend().get("warm-up", timeout=0.01)  # its channel open, as in a waiter
    monkeypatch.setattr(Notifier, "notify", lambda self: None)
    thread = _Later(0.2, lambda: writer.result_backend().store(
        [Result("j", b"1", "default")], 60))
    result = waiter.result_backend().get("j", timeout=None)
    returned = time.monotonic()
    thread.join()
    assert result is not None
    assert returned - thread.done < _waiting.RECHECK + SOON
