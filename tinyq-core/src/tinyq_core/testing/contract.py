"""The broker contract: the behaviour every Broker plugin must share, as a pytest test class.

A plugin runs it against its own broker by subclassing it (see ``docs/plugins.md``)::

    class TestMyBroker(BrokerContract):
        @pytest.fixture
        def broker(self):
            broker = MyBroker(url, visibility_timeout=0.5)  # fresh and empty
            yield broker
            broker.close()

Two kinds of time pass in these tests. Leases, due times and result TTLs follow the broker's
clock, moved by :meth:`BrokerContract.advance` (real sleeping by default; a broker on a fake
clock moves the clock) and read by :meth:`BrokerContract.now`. Blocking waits (the ``timeout``
of ``reserve``, ``wait_for_delayed`` and ``get``) are always real time. Every test uses its own
queue names and job ids, so a shared server does not leak state from one test into another.

The tests live in one module per part, all composed here: the required tier (``Broker``
methods only: _delivery, _redelivery, _waiting, _settle), the result backend (_results,
skipped without one), the admin tier (_admin and _lookup, skipped unless the broker is a
``BrokerAdmin``), the worker registry (_registry, skipped unless it is a
``WorkerRegistry``), the unique locks (_unique, skipped unless it is a ``UniqueLocks``),
the schedule records (_schedules, skipped unless it is a ``ScheduleRecords``), cancel
requests (_cancel, skipped unless it is a ``CancelRequests``), the limits (_limits, skipped
unless it is a ``JobLimits``) and the async tier (_async, skipped unless it is an
``AsyncBroker``).
"""

from __future__ import annotations

from ._admin import AdminContract
from ._async import AsyncContract
from ._cancel import CancelContract
from ._delivery import DeliveryContract
from ._limits import LimitsContract
from ._lookup import LookupContract
from ._progress import ProgressContract
from ._redelivery import RedeliveryContract
from ._registry import RegistryContract
from ._results import ResultsContract
from ._schedules import ScheduleContract
from ._settle import SettleContract
from ._unique import UniqueContract
from ._waiting import WaitingContract
from ._workflows import ChordContract

# The parts of the required tier: their tests use nothing but Broker's methods.
REQUIRED_TIER = (DeliveryContract, RedeliveryContract, WaitingContract, SettleContract)


class BrokerContract(
    DeliveryContract,
    RedeliveryContract,
    WaitingContract,
    SettleContract,
    ResultsContract,
    ProgressContract,
    AdminContract,
    LookupContract,
    RegistryContract,
    UniqueContract,
    ScheduleContract,
    CancelContract,
    LimitsContract,
    AsyncContract,
    ChordContract,
):
    """Tests every broker must pass. Subclass it as ``TestXxx`` and provide a ``broker`` fixture
    returning a fresh, empty broker with a short ``visibility_timeout`` (about 0.5 s on real
    time); override :meth:`advance` and :meth:`now` when the broker runs on a fake clock.

    Optional: a ``second_broker`` fixture (another instance on the same store, as a second
    process would open it) for the cross-process wake-up tests, and the class attribute
    ``durable_enqueue_refused`` (True when ``enqueue(..., durable=True)`` must raise
    BrokerError where the broker runs, as on a Redis server without a replica).

    The name does not start with ``Test``, so pytest runs it only through subclasses.
    """
