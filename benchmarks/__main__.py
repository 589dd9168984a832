"""`python -m benchmarks`: tinyq side by side with RQ, Celery, Dramatiq, Huey, arq and taskiq
(those installed; `pip install -e '.[bench]'`), and plain redis-py, on a throwaway Redis; and
tinyq-sqlite side by side with Huey's SQLite storage, each on a temporary database file.

Scenarios, each run `--runs` times (systems interleaved within a run), reported as the median
and the spread (min-max) over the runs:

1. enqueue N jobs one by one, and with the system's bulk API where it has one;
2. drain N enqueued jobs with a worker of 1 process, then of 2 processes: jobs/s from the
   first to the last execution, and from spawning the worker; each drain must run every job
   exactly once (the task counts its executions);
3. latency from enqueue to execution on the idle worker, p50 and p99 of sequential jobs;
4. plain redis-py: XADD/LPUSH one by one and pipelined, an XREADGROUP + XACK/XDEL drain loop;
5. tinyq's worker RSS before and after draining --rss-jobs jobs;
6. with --async, then: async jobs drained and enqueued by tinyq, arq, taskiq and SAQ, the
   peers from their own venvs (benchmarks/async_suite.py, `python -m benchmarks.peer_envs`).

The SQLite systems (tinyq-sqlite, huey-sqlite) run scenarios 1-3 in the same run, reported in
tables of their own; every task records its execution in the throwaway Redis, whatever its
broker.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from . import _common as c
from ._redis_server import RedisServer

# system -> the package it needs
SYSTEMS = {
    "tinyq": "tinyq_core",
    "rq": "rq",
    "celery": "celery",
    "dramatiq": "dramatiq",
    "huey": "huey",
    "arq": "arq",
    "taskiq": "taskiq_redis",
    "tinyq-sqlite": "tinyq_sqlite",
    "huey-sqlite": "huey",
}
SQLITE = ("tinyq-sqlite", "huey-sqlite")  # compared with each other, not with the Redis ones
VERSIONS = ["redis", "hiredis", "rq", "celery", "kombu", "dramatiq", "huey", "arq", "taskiq",
            "taskiq-redis"]
DASH = "\u2013"  # en dash, as in "min-max" spreads
RAW_LABELS = {
    "xadd_one": "XADD one by one",
    "xadd_pipe": "XADD pipelined (100)",
    "lpush_one": "LPUSH one by one",
    "lpush_pipe": "LPUSH pipelined (100)",
    "drain": "XREADGROUP+XACK+XDEL drain, task run per entry",
    "drain_bare": "same drain loop without the task",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=20_000,
                        help="jobs for the enqueue and drain scenarios (default: 20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every scenario (default: 3)")
    parser.add_argument("--systems", default=None,
                        help=f"comma list among {','.join(SYSTEMS)} (default: all installed)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: --n 1000, 1 run, 100 latency jobs, 20000 RSS jobs")
    parser.add_argument("--latency-jobs", type=int, default=500,
                        help="sequential jobs of the latency scenario (default: 500)")
    parser.add_argument("--rss-jobs", type=int, default=1_000_000,
                        help="jobs drained by the RSS scenario (default: 1000000)")
    parser.add_argument("--skip-rss", action="store_true", help="skip the RSS scenario")
    parser.add_argument("--rss-peers", action="store_true",
                        help="measure the RSS of the peers' workers too (slow)")
    parser.add_argument("--json", type=Path, help="write every measured value to this file")
    parser.add_argument("--markdown", type=Path, help="write the tables as Markdown here")
    parser.add_argument("--async", dest="run_async", action="store_true",
                        help="then the async scenarios with arq, taskiq and SAQ from their venvs "
                             "(benchmarks.async_suite, benchmarks.peer_envs)")
    parser.add_argument("--async-n", type=int, default=2_000,
                        help="jobs for the async scenarios (default: 2000)")
    parser.add_argument("--async-concurrency", type=int, default=100,
                        help="the async drain's shared concurrency (default: 100)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.runs, args.latency_jobs = 1000, 1, 100
        if args.rss_jobs == 1_000_000:
            args.rss_jobs = 20_000
    if args.n < 1 or args.runs < 1 or args.latency_jobs < 1 or args.rss_jobs < 1:
        parser.error("--n, --runs, --latency-jobs and --rss-jobs must be at least 1")
    installed = [s for s, pkg in SYSTEMS.items() if importlib.util.find_spec(pkg) is not None
                 or (s == "tinyq-sqlite" and (c.ROOT / "tinyq-sqlite" / "src").is_dir())]
    if args.systems is None:
        args.systems = installed
    else:
        args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        for s in args.systems:
            if s not in SYSTEMS:
                parser.error(f"unknown system {s!r}; choose among {', '.join(SYSTEMS)}")
            if s not in installed:
                parser.error(f"{s} is not installed (pip install -e '.[bench]')")
    return args


# -- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def tinyq_source() -> str:
    """The last commit of tinyq's sources, with "+changes <hash>" when the work tree's differ."""
    sources = ["tinyq-core/src", "tinyq-redis/src", "tinyq-memory/src", "tinyq-sqlite/src"]
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h", "--", *sources], cwd=c.ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "HEAD", "--", *sources], cwd=c.ROOT,
                               capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + (f"+changes {hashlib.sha1(dirty).hexdigest()[:7]}" if dirty else "")


def machine(server: RedisServer) -> list[tuple[str, str]]:
    import sqlite3

    import tinyq_core

    info = [
        ("CPUs", f"{os.cpu_count()} x {cpu_model()}"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Redis", server.version()),
        ("SQLite", sqlite3.sqlite_version),
        ("tinyq", f"{tinyq_core.__version__} ({tinyq_source()})"),
    ]
    for dist in VERSIONS:
        try:
            info.append((dist if dist != "redis" else "redis-py",
                         importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


# -- measuring --------------------------------------------------------------------------------

Values = dict[str, dict[str, list[float]]]  # system -> metric -> one value per run


def timed(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t0)


def run_system(bench: c.System, args: argparse.Namespace, run: int, values: dict[str, list[float]],
               verdicts: list[str]) -> None:
    n = args.n
    bench.reset()
    one = timed(bench.enqueue_one, n)
    values["enqueue_one"].append(one)
    d1, latencies = bench.drain(n, 1, f"run{run}-p1", latency_jobs=args.latency_jobs)
    values["drain1"].append(d1.rate)
    values["drain1_start"].append(d1.rate_with_start)
    verdicts.append(f"run {run} 1 process: {d1.verdict}")
    assert latencies is not None
    p50 = statistics.median(latencies) * 1000
    p99 = c.percentile(latencies, 0.99) * 1000
    values["p50"].append(p50)
    values["p99"].append(p99)

    bench.reset()
    bulk = None
    if bench.bulk_api:
        bulk = timed(bench.enqueue_bulk, n)
        values["enqueue_bulk"].append(bulk)
    else:
        bench.enqueue_one(n)
    d2, _ = bench.drain(n, 2, f"run{run}-p2")
    values["drain2"].append(d2.rate)
    values["drain2_start"].append(d2.rate_with_start)
    verdicts.append(f"run {run} 2 processes: {d2.verdict}")
    bench.reset()
    print(f"  {bench.name:9} enqueue {one:8,.0f}/s  bulk {fmt_rate(bulk, '/s'):>10}  "
          f"drain 1p {d1.rate:7,.0f}/s ({d1.verdict})  2p {d2.rate:7,.0f}/s ({d2.verdict})  "
          f"latency p50 {p50:.2f} ms p99 {p99:.2f} ms", flush=True)


def fmt_rate(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.0f}{unit}"


# -- reporting --------------------------------------------------------------------------------


def stats(values: list[float]) -> tuple[float, float, float] | None:
    return c.median_spread(values) if values else None


def cell(values: list[float], digits: int = 0) -> str:
    s = stats(values)
    if s is None:
        return "n/a"
    med, lo, hi = s
    if len(values) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({lo:,.{digits}f}{DASH}{hi:,.{digits}f})"


def render(title: str, header: list[str], rows: list[list[str]], markdown: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title]
    lines.append("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                                  for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for r in rows:
        lines.append("  " + "  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                                      for i, (x, w) in enumerate(zip(r, widths, strict=True))))
    markdown.append(f"**{title}**\n")
    markdown.append("| " + " | ".join(header) + " |")
    markdown.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    markdown.extend("| " + " | ".join(r) + " |" for r in rows)
    markdown.append("")
    return "\n".join(lines)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def best_peer(values: Values, metric: str, lower: bool = False) -> tuple[str, float] | None:
    peers = [(s, median(v[metric])) for s, v in values.items()
             if s != "tinyq" and s not in SQLITE]
    peers = [(s, m) for s, m in peers if m is not None]
    if not peers:
        return None
    return (min if lower else max)(peers, key=lambda p: p[1])  # type: ignore[return-value]


def report(args: argparse.Namespace, values: Values, raw: dict[str, list[float]],
           verdicts: dict[str, list[str]], errors: dict[str, list[str]],
           rss: dict[str, tuple[int, int, int] | str], bulk_apis: dict[str, str | None],
           notes: dict[str, str]) -> tuple[str, list[str]]:
    md: list[str] = []
    out: list[str] = []
    systems = [s for s in values if s not in SQLITE]
    runs = f"median (min{DASH}max) of {args.runs} run(s)"
    if systems:
        redis_tables(args, values, raw, verdicts, rss, bulk_apis, systems, runs, out, md)
    sqlite_systems = [s for s in values if s in SQLITE]
    if sqlite_systems:
        sqlite_tables(args, values, verdicts, bulk_apis, sqlite_systems, runs, out, md)

    if notes:
        lines = ["Workers:"] + [f"  {s}: {note}" for s, note in notes.items()]
        out.append("\n".join(lines))
        md.append("Workers:\n")
        md.extend(f"- {s}: {note}" for s, note in notes.items())
        md.append("")

    targets: list[str] = []
    if "tinyq" in values:
        targets = tinyq_targets(values, raw, verdicts.get("tinyq", []), rss.get("tinyq"))
        out.append("tinyq against its speed targets (medians of this run):\n" +
                   "\n".join("  " + t for t in targets))
        md.append("**tinyq against the targets (medians)**\n")
        md.extend(f"- {t}" for t in targets)
        md.append("")
    if "tinyq-sqlite" in values:
        targets = sqlite_targets(values, verdicts.get("tinyq-sqlite", []))
        out.append("tinyq-sqlite against its targets, set by Huey-SQLite (medians of this run):\n" +
                   "\n".join("  " + t for t in targets))
        md.append("**tinyq-sqlite against the targets (medians)**\n")
        md.extend(f"- {t}" for t in targets)
        md.append("")
    if any(errors.values()):
        lines = ["Errors:"]
        for s, errs in errors.items():
            lines.extend(f"  {s}: {e.splitlines()[0]}" for e in errs)
        out.append("\n".join(lines))
    return "\n\n".join(out), md


def drain_rows(values: Values, verdicts: dict[str, list[str]], systems: list[str]
               ) -> list[list[str]]:
    rows = []
    for s in systems:
        v = values[s]
        bad = [x for x in verdicts[s] if not x.endswith(": ok")]
        rows.append([s, cell(v["drain1"]), cell(v["drain1_start"]), cell(v["drain2"]),
                     cell(v["drain2_start"]),
                     ("ok" if verdicts[s] else "—") if not bad else "; ".join(bad)])
    return rows


def sqlite_tables(args: argparse.Namespace, values: Values, verdicts: dict[str, list[str]],
                  bulk_apis: dict[str, str | None], systems: list[str], runs: str,
                  out: list[str], md: list[str]) -> None:
    rows = [[s, cell(values[s]["enqueue_one"]),
             cell(values[s]["enqueue_bulk"]) if bulk_apis[s] else "n/a", bulk_apis[s] or "—"]
            for s in systems]
    out.append(render(f"S1. SQLite: enqueue {args.n:,} jobs (jobs/s, {runs})",
                      ["system", "one by one", "bulk", "bulk API"], rows, md))
    out.append(render(
        f"S2. SQLite: drain {args.n:,} enqueued jobs (jobs/s, first to last execution, and "
        f"from spawning the worker; {runs})",
        ["system", "1 process", "1 p. + start-up", "2 processes", "2 p. + start-up",
         "exactly once"], drain_rows(values, verdicts, systems), md))
    rows = [[s, cell(values[s]["p50"], 2), cell(values[s]["p99"], 2)] for s in systems]
    out.append(render(f"S3. SQLite: latency, enqueue to execution, {args.latency_jobs} "
                      f"sequential jobs on an idle 1-process worker (ms, {runs})",
                      ["system", "p50", "p99"], rows, md))


def sqlite_targets(values: Values, verdicts: list[str]) -> list[str]:
    """The targets: drain >= 2x Huey-SQLite, latency p50 and one-by-one enqueue no worse."""
    t, h = values["tinyq-sqlite"], values.get("huey-sqlite")
    lines = []

    def check(ok: bool | None, text: str) -> None:
        lines.append(f"{'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")

    for metric, label, factor, lower, unit in (
        ("drain1", "drain (1 process) >= 2x huey-sqlite", 2.0, False, "/s"),
        ("drain2", "drain (2 processes) >= 2x huey-sqlite", 2.0, False, "/s"),
        ("enqueue_one", "one-by-one enqueue >= huey-sqlite", 1.0, False, "/s"),
        ("p50", "latency p50 <= huey-sqlite", 1.0, True, " ms"),
        ("p99", "latency p99 <= huey-sqlite (not a target; for reference)", 1.0, True, " ms"),
    ):
        mine, peer = median(t[metric]), median(h[metric]) if h is not None else None
        if mine is None or peer is None:
            check(None, f"{label}: not measured")
            continue
        ok = mine <= peer * factor if lower else mine >= peer * factor
        digits = 2 if lower else 0
        check(ok, f"{label}: {mine:,.{digits}f}{unit} vs {peer:,.{digits}f}{unit} = "
              f"{mine / peer:.2f}x")
    bad = [v for v in verdicts if not v.endswith(": ok")]
    check(bool(verdicts) and not bad, f"every drain ran each job exactly once: "
          f"{len(verdicts) - len(bad)}/{len(verdicts)} drains ok" +
          (f" ({'; '.join(bad)})" if bad else ""))
    return lines


def redis_tables(args: argparse.Namespace, values: Values, raw: dict[str, list[float]],
                 verdicts: dict[str, list[str]], rss: dict[str, tuple[int, int, int] | str],
                 bulk_apis: dict[str, str | None], systems: list[str], runs: str,
                 out: list[str], md: list[str]) -> None:

    rows = [[s, cell(values[s]["enqueue_one"]),
             cell(values[s]["enqueue_bulk"]) if bulk_apis[s] else "n/a", bulk_apis[s] or "—"]
            for s in systems]
    rows += [["raw redis-py XADD", cell(raw["xadd_one"]), cell(raw["xadd_pipe"]),
              "pipeline of 100"],
             ["raw redis-py LPUSH", cell(raw["lpush_one"]), cell(raw["lpush_pipe"]),
              "pipeline of 100"]]
    out.append(render(f"1. Enqueue {args.n:,} jobs (jobs/s, {runs})",
                      ["system", "one by one", "bulk", "bulk API"], rows, md))

    rows = drain_rows(values, verdicts, systems)
    rows.append(["raw redis-py drain loop", cell(raw["drain"]), "", "", "", ""])
    out.append(render(
        f"2. Drain {args.n:,} enqueued jobs (jobs/s, first to last execution, and from "
        f"spawning the worker; {runs})",
        ["system", "1 process", "1 p. + start-up", "2 processes", "2 p. + start-up",
         "exactly once"], rows, md))

    rows = [[s, cell(values[s]["p50"], 2), cell(values[s]["p99"], 2)] for s in systems]
    out.append(render(f"3. Latency, enqueue to execution, {args.latency_jobs} sequential jobs "
                      f"on an idle 1-process worker (ms, {runs})", ["system", "p50", "p99"],
                      rows, md))

    rows = [[label, cell(raw[key])] for key, label in RAW_LABELS.items()]
    out.append(render(f"4. Plain redis-py, the same Redis work (ops or jobs/s, {runs})",
                      ["operation", "per second"], rows, md))

    if rss:
        rows = []
        for s, r in rss.items():
            if isinstance(r, str):
                rows.append([s, r, "", "", ""])
            else:
                before, after, peak = r
                rows.append([s, f"{before / 1024:.1f}", f"{after / 1024:.1f}",
                             f"{(after - before) / 1024:+.1f}", f"{peak / 1024:.1f}"])
        out.append(render(f"5. Worker RSS over {args.rss_jobs:,} jobs (MB; VmRSS of the "
                          "1-process worker after a 1,000-job warm-up, and after the drain)",
                          ["system", "before", "after", "growth", "peak sampled"], rows, md))


def tinyq_targets(values: Values, raw: dict[str, list[float]], verdicts: list[str],
                  rss: tuple[int, int, int] | str | None) -> list[str]:
    t = values["tinyq"]
    lines = []

    def check(ok: bool | None, text: str) -> None:
        lines.append(f"{'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")

    for metric, label in (("drain1", "1 process"), ("drain2", "2 processes")):
        mine, peer = median(t[metric]), best_peer(values, metric)
        if mine is None or peer is None:
            check(None, f"drain ({label}) >= 3x the fastest peer: no peer measured")
        else:
            check(mine >= 3 * peer[1], f"drain ({label}) >= 3x the fastest peer: "
                  f"{mine:,.0f}/s vs {peer[0]} {peer[1]:,.0f}/s = {mine / peer[1]:.2f}x")
    mine, limit = median(t["drain1"]), median(raw["drain"])
    if mine is not None and limit is not None:
        check(mine >= 0.5 * limit, f"drain (1 process) >= 0.5x the raw drain loop: "
              f"{mine:,.0f}/s vs {limit:,.0f}/s = {mine / limit:.2f}x")
    mine, limit = median(t["enqueue_one"]), median(raw["xadd_one"])
    if mine is not None and limit is not None:
        check(mine >= 0.8 * limit, f"one-by-one enqueue >= 0.8x the raw XADD loop: "
              f"{mine:,.0f}/s vs {limit:,.0f}/s = {mine / limit:.2f}x")
    mine, limit = median(t["enqueue_bulk"]), median(raw["xadd_pipe"])
    if mine is not None and limit is not None:
        check(mine >= 0.5 * limit, f"map enqueue >= 0.5x the raw pipelined XADD: "
              f"{mine:,.0f}/s vs {limit:,.0f}/s = {mine / limit:.2f}x")
    for metric in ("p50", "p99"):
        mine, peer = median(t[metric]), best_peer(values, metric, lower=True)
        if mine is None or peer is None:
            check(None, f"latency {metric} <= the best peer's: no peer measured")
        else:
            check(mine <= peer[1], f"latency {metric} <= the best peer's: {mine:.2f} ms vs "
                  f"{peer[0]} {peer[1]:.2f} ms = {mine / peer[1]:.2f}x")
    bad = [v for v in verdicts if not v.endswith(": ok")]
    check(bool(verdicts) and not bad, f"every drain ran each job exactly once: "
          f"{len(verdicts) - len(bad)}/{len(verdicts)} drains ok" +
          (f" ({'; '.join(bad)})" if bad else ""))
    if isinstance(rss, tuple):
        growth = (rss[1] - rss[0]) / 1024
        check(growth < 20, f"worker RSS grows < 20 MB: {growth:+.1f} MB "
              f"({rss[0] / 1024:.1f} -> {rss[1] / 1024:.1f} MB)")
    else:
        check(None, f"worker RSS grows < 20 MB: {rss or 'not measured (--skip-rss)'}")
    return lines


def ratios(values: Values, raw: dict[str, list[float]]) -> list[str]:
    """tinyq's medians as a ratio to the fastest peer and to raw redis-py."""
    if "tinyq" not in values:
        return []
    t = values["tinyq"]
    raws = {"enqueue_one": "xadd_one", "enqueue_bulk": "xadd_pipe", "drain1": "drain"}
    lines = []
    for metric, label, lower in (
        ("enqueue_one", "enqueue one by one", False), ("enqueue_bulk", "bulk enqueue", False),
        ("drain1", "drain, 1 process", False), ("drain2", "drain, 2 processes", False),
        ("drain1_start", "drain + start-up, 1 process", False),
        ("drain2_start", "drain + start-up, 2 processes", False),
        ("p50", "latency p50", True), ("p99", "latency p99", True),
    ):
        mine = median(t[metric])
        if mine is None:
            continue
        parts = []
        peer = best_peer(values, metric, lower)
        if peer is not None:
            parts.append(f"{mine / peer[1]:.2f}x {'best' if lower else 'fastest'} peer "
                         f"({peer[0]})")
        if metric in raws and raw[raws[metric]]:
            parts.append(f"{mine / statistics.median(raw[raws[metric]]):.2f}x raw "
                         f"{RAW_LABELS[raws[metric]].split(',')[0]}")
        if parts:
            lines.append(f"  {label}: " + ", ".join(parts))
    return lines


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = RedisServer().start()
    os.environ[c.ENV] = server.url
    sqlite_dir = tempfile.mkdtemp(prefix="tinyq-bench-sqlite-")
    os.environ[sqlite_env()] = sqlite_dir
    logdir = Path(tempfile.mkdtemp(prefix="tinyq-bench-logs-"))
    benches: dict[str, c.System] = {}
    raw_bench = None
    values: Values = defaultdict(lambda: defaultdict(list))
    raw: dict[str, list[float]] = defaultdict(list)
    verdicts: dict[str, list[str]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    rss: dict[str, tuple[int, int, int] | str] = {}
    loads: list[float] = []  # other work on the machine skews every figure: say how much
    try:
        from .raw_redis import Raw

        for name in args.systems:
            module = importlib.import_module(f"{__package__}.{name.replace('-', '_')}_bench")
            benches[name] = module.Bench(logdir)
            benches[name].reset()
            values[name] = defaultdict(list)  # the systems' order
        if any(name not in SQLITE for name in args.systems):  # raw redis-py: for the Redis ones
            raw_bench = Raw(logdir)
        source = tinyq_source()
        print("Machine: " + "; ".join(f"{k} {v}" for k, v in machine(server)))
        print(f"Redis: throwaway redis-server on port {server.port}; worker logs in {logdir}")
        if any(name in SQLITE for name in args.systems):
            print(f"SQLite: database files in {sqlite_dir}")
        print(f"Systems: {', '.join(args.systems)}; N={args.n:,}, {args.runs} run(s), "
              f"{args.latency_jobs} latency jobs\n", flush=True)
        for run in range(1, args.runs + 1):
            loads.append(os.getloadavg()[0])
            print(f"run {run}/{args.runs} (load average {loads[-1]:.2f})", flush=True)
            if raw_bench is not None:
                for key, value in raw_bench.run(args.n).items():
                    raw[key].append(value)
                print("  raw       " + "  ".join(f"{key} {raw[key][-1]:,.0f}/s" for key in raw),
                      flush=True)
            for name, bench in benches.items():
                try:
                    run_system(bench, args, run, values[name], verdicts[name])
                except c.BenchError as exc:
                    errors[name].append(str(exc))
                    print(f"  {name:9} ERROR: {exc}", flush=True)
                    try:
                        bench.reset()
                    except Exception:  # keep going with the others
                        pass
        if not args.skip_rss:
            for name in [n for n in benches if n == "tinyq" or args.rss_peers]:
                print(f"RSS: {name}, {args.rss_jobs:,} jobs...", flush=True)
                t0 = time.monotonic()
                try:
                    rss[name] = benches[name].memory(args.rss_jobs)
                except c.BenchError as exc:
                    rss[name] = f"error: {str(exc).splitlines()[0]}"
                    errors[name].append(str(exc))
                r = rss[name]
                shown = r if isinstance(r, str) else f"{r[0] / 1024:.1f} -> {r[1] / 1024:.1f} MB"
                print(f"  {name}: {shown} in {time.monotonic() - t0:.0f} s", flush=True)
        notes = {name: b.worker_note for name, b in benches.items()}
        text, md = report(args, values, raw, verdicts, errors, rss,
                          {name: b.bulk_api for name, b in benches.items()}, notes)
        ratio_lines = ratios(values, raw)
        loads.append(os.getloadavg()[0])
        print(f"\n1-minute load average at the start of each run and at the end: "
              f"{', '.join(f'{x:.2f}' for x in loads)} (on {os.cpu_count()} CPUs)")
        if tinyq_source() != source:
            print(f"\nWARNING: tinyq's sources changed during the run ({source} -> "
                  f"{tinyq_source()}): workers started later ran the newer code")
        print("\n" + text)
        if ratio_lines:
            print("\ntinyq's medians as ratios:\n" + "\n".join(ratio_lines))
            md.append("**tinyq's medians as ratios**\n")
            md.extend("- " + line.strip() for line in ratio_lines)
            md.append("")
        if args.run_async:
            from . import async_suite

            md.extend(async_suite.run(server, args.async_n, args.runs, args.async_concurrency))
        if args.markdown:
            args.markdown.write_text("\n".join(md))
        if args.json:
            args.json.write_text(json.dumps({
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "machine": dict(machine(server)), "values": values, "raw": raw,
                "verdicts": verdicts, "errors": errors, "rss": rss, "load": loads,
            }, indent=1, default=str))
        return 1 if any(errors.values()) else 0
    finally:
        for bench in benches.values():
            try:
                bench.close()
            except Exception:  # closing is best effort
                pass
        if raw_bench is not None:
            raw_bench.close()
        server.close()
        shutil.rmtree(sqlite_dir, ignore_errors=True)


def sqlite_env() -> str:
    from ._sqlite import ENV

    return ENV


if __name__ == "__main__":
    sys.exit(main())
