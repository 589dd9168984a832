"""An application's broker and result backend: chosen by URI or instance, made on first use."""

from __future__ import annotations

from ._interfaces import Broker, ResultBackend
from ._plugins import Registry
from ._uri import redact_uri


class Backends:
    """The broker (from a URI through the registry, or an instance) and the result backend
    (the one given, else the broker's own). A URI is checked at once and connected on first
    use, so importing an application never connects."""

    def __init__(
        self, registry: Registry, broker: str | Broker, results: ResultBackend | None
    ) -> None:
        self._registry = self.registry = registry
        self.explicit_results = results  # None: the broker's own backend
        self._results = results
        self._broker: Broker | None = None
        self.uri = ""
        self.use(broker)

    def __repr__(self) -> str:
        return redact_uri(self.uri) or type(self._broker).__name__

    def use(self, broker: str | Broker) -> None:
        """Switch to another broker, closing one this object made."""
        if self._broker is not None and self.uri:
            self._broker.close()
        self._results = self.explicit_results
        if isinstance(broker, Broker):
            self._broker, self.uri = broker, ""
        else:
            self._registry.check_broker_uri(broker)
            self._broker, self.uri = None, broker

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = self._registry.broker(self.uri)
        return self._broker

    @property
    def results(self) -> ResultBackend:
        if self._results is None:
            self._results = self.broker.result_backend()
        return self._results

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()
