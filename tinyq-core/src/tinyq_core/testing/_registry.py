"""The worker-registry tier (:class:`WorkerRegistry`): records kept per worker id, replaced
by a newer one, forgotten after their ttl or when removed. Every test takes the ``registry``
fixture, which skips them for a broker without the tier."""

from __future__ import annotations

import uuid

from .._interfaces import Broker, WorkerRegistry
from ._support import ContractBase


def new_worker() -> str:
    return f"contract-host:{uuid.uuid4().hex[:12]}"


class RegistryContract(ContractBase):
    def records(self, registry: WorkerRegistry, *ids: str) -> list[bytes]:
        """The listed records of ``ids`` only (a shared server may hold others), sorted."""
        return sorted(r for r in registry.worker_records() if any(i.encode() in r for i in ids))

    def test_a_record_is_listed_and_replaced(self, registry: WorkerRegistry) -> None:
        worker = new_worker()
        assert self.records(registry, worker) == []
        registry.record_worker(worker, f"{worker} beat 1".encode(), 60)
        assert self.records(registry, worker) == [f"{worker} beat 1".encode()]
        registry.record_worker(worker, f"{worker} beat 2".encode(), 60)
        assert self.records(registry, worker) == [f"{worker} beat 2".encode()]

    def test_several_workers_are_listed(self, registry: WorkerRegistry) -> None:
        workers = [new_worker() for _ in range(5)]
        for worker in workers:
            registry.record_worker(worker, f"{worker} record".encode(), 60)
        assert self.records(registry, *workers) == sorted(
            f"{w} record".encode() for w in workers)

    def test_a_record_expires_after_its_ttl(
        self, broker: Broker, registry: WorkerRegistry
    ) -> None:
        gone, renewed, lasting = new_worker(), new_worker(), new_worker()
        ttl = 1.0
        registry.record_worker(gone, f"{gone}".encode(), ttl)
        registry.record_worker(renewed, f"{renewed}".encode(), ttl)
        registry.record_worker(lasting, f"{lasting}".encode(), 60)
        self.advance(broker, ttl * 0.6)
        registry.record_worker(renewed, f"{renewed} again".encode(), ttl)  # a heartbeat
        self.advance(broker, ttl * 0.6)
        assert self.records(registry, gone, renewed, lasting) == sorted(
            [f"{renewed} again".encode(), lasting.encode()])
        self.advance(broker, ttl * 0.6)
        assert self.records(registry, gone, renewed, lasting) == [lasting.encode()]

    def test_remove_forgets_a_worker_now(self, registry: WorkerRegistry) -> None:
        stopped, running = new_worker(), new_worker()
        registry.record_worker(stopped, stopped.encode(), 60)
        registry.record_worker(running, running.encode(), 60)
        registry.remove_worker(stopped)
        registry.remove_worker(new_worker())  # unknown: no error
        assert self.records(registry, stopped, running) == [running.encode()]
