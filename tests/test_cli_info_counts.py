"""``tinyq info``'s numbers come from ``BrokerAdmin.counts()``; a broker without it (its admin
tier older than counts) still shows what it can, the rest as unknown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinyq_core import Application
from tinyq_core._cli.info import queue_stats, render


@pytest.fixture
def app() -> Iterator[Application]:
    app = Application("memory://")

    @app.task(name="add")
    def add(x: int) -> int:
        return x

    for n in range(3):
        add.delay(n)
    add.apply_async((9,), countdown=3600)
    [delivery] = app.broker.reserve(["default"], 1, 1.0)
    app.broker.dead_letter(delivery, "bad")
    yield app
    app.close()


def test_info_shows_the_exact_counts(app: Application) -> None:
    stats = queue_stats(app, app.broker, "default", 0.0)  # type: ignore[arg-type]
    assert (stats.ready, stats.scheduled, stats.running, stats.dead) == (2, 1, 0, 1)
    assert stats.waiting == 3


def test_info_without_counts_shows_unknowns(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot(queue: str) -> object:
        raise NotImplementedError("an older broker")

    monkeypatch.setattr(app.broker, "counts", cannot)
    stats = queue_stats(app, app.broker, "default", 0.0)  # type: ignore[arg-type]
    assert (stats.waiting, stats.ready, stats.scheduled, stats.dead) == (3, None, None, None)
    assert stats.as_json()["dead_exact"] is False
    line = render(app, [stats], None).splitlines()[3]
    assert line.split() == ["default", "3", "-", "-", "0", "-", line.split()[-1]]
