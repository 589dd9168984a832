"""`python -m benchmarks.ab REV_A REV_B`: tinyq at two commits in the same run.

Each commit gets a git worktree in a temporary folder; the tinyq scenarios of
`python -m benchmarks` (without RSS) then run for A, B, A, B, ... so that both sides see the
same machine, whatever its load does meanwhile. Prints every value and the medians, and the
rounds each side won: on a shared VM single runs vary by 15 % and more, so only many
alternating rounds tell a change from noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("drain1", "drain2", "p50", "p99", "enqueue_one", "enqueue_bulk")
LOWER_IS_BETTER = {"p50", "p99"}


def run_side(tree: Path, out: Path, n: int) -> dict[str, float]:
    paths = [str(tree / member / "src") for member in ("tinyq-core", "tinyq-memory", "tinyq-redis")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "--systems", "tinyq", "--skip-rss", "--runs", "1",
         "--n", str(n), "--json", str(out)],
        cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    values = json.loads(out.read_text())["values"]["tinyq"]
    return {key: float(values[key][0]) for key in KEYS}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("a", help="a git revision (e.g. the commit before a change)")
    parser.add_argument("b", help="another revision (e.g. HEAD)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=20000, help="jobs per drain and enqueue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinyq-ab-") as tmp:
        trees = {}
        for side, rev in (("A", args.a), ("B", args.b)):
            trees[side] = Path(tmp) / side
            subprocess.run(["git", "worktree", "add", "--detach", str(trees[side]), rev],
                           cwd=ROOT, check=True, capture_output=True)
        try:
            seen: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
            for round_ in range(args.rounds):
                for side in ("A", "B"):
                    values = run_side(trees[side], Path(tmp) / f"{side}{round_}.json", args.n)
                    seen[side].append(values)
                    print(f"round {round_ + 1} {side}: " + ", ".join(
                        f"{k} {v:,.2f}" for k, v in values.items()), flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               capture_output=True)
    print(f"\nmedians over {args.rounds} rounds (A = {args.a}, B = {args.b}):")
    for key in KEYS:
        a = [v[key] for v in seen["A"]]
        b = [v[key] for v in seen["B"]]
        better = (lambda x, y: x < y) if key in LOWER_IS_BETTER else (lambda x, y: x > y)
        wins = sum(better(y, x) for x, y in zip(a, b, strict=True))
        print(f"  {key:13} A {statistics.median(a):>10,.2f} ({min(a):,.2f}-{max(a):,.2f})   "
              f"B {statistics.median(b):>10,.2f} ({min(b):,.2f}-{max(b):,.2f})   "
              f"B better in {wins}/{args.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
