"""Benchmarks of tinyq against other Python job queues and plain redis-py: `python -m benchmarks`
(see docs/benchmarks.md). Not part of any distribution; the peers come with the `bench` extra."""
