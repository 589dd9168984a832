"""Helpers shared by the test modules: an app project run through ``tinyq`` processes
(:mod:`support.project`), the environment of subprocesses (:mod:`support.environment`), a
worker in a thread (:mod:`support.worker_thread`) and :func:`support.waiting.wait_until`.
Importable as ``support`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``)."""
