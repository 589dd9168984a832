"""`python -m benchmarks.peer_envs [--dir DIR] [--peers arq,saq]`: one virtual environment per
async peer (arq, taskiq, SAQ), installed from PyPI, for `benchmarks.async_drain` and
`benchmarks.async_enqueue` (and `python -m benchmarks --async`).

Why separate environments: arq pins redis<6 while tinyq's environment has a newer redis-py,
and the peers' dependencies should not leak into the environment that runs tinyq. Each peer's
worker and enqueue script run as subprocesses with that venv's python; the venv never imports
tinyq. The installed versions are written to DIR/versions.json (read back into the reports).

The default folder is `.bench-venvs/` at the repository root (gitignored); the environment
variable TINYQ_BENCH_VENVS overrides it for the benchmarks. CI never creates these.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "TINYQ_BENCH_VENVS"
# peer -> what pip installs (the Redis client each needs comes with it)
PEERS: dict[str, list[str]] = {
    "arq": ["arq"],
    "taskiq": ["taskiq", "taskiq-redis"],
    # saq's Redis queue imports redis.asyncio, and saq imports typing_extensions: its base
    # install (0.26) brings neither
    "saq": ["saq", "redis", "typing-extensions"],
}
# peer -> the distributions whose versions the reports show
VERSIONS: dict[str, list[str]] = {
    "arq": ["arq", "redis"],
    "taskiq": ["taskiq", "taskiq-redis", "redis"],
    "saq": ["saq", "redis"],
}


def venv_dir() -> Path:
    return Path(os.environ.get(ENV) or ROOT / ".bench-venvs")


def python(peer: str, base: Path | None = None) -> Path:
    """The peer venv's interpreter (it may not exist: see `available`)."""
    return (base or venv_dir()) / peer / "bin" / "python"


def available(peer: str, base: Path | None = None) -> bool:
    return python(peer, base).exists()


def how_to_create(peer: str) -> str:
    return (f"skipping {peer}: no venv at {python(peer).parent.parent} "
            f"(create it with `python -m benchmarks.peer_envs --peers {peer}`)")


def versions(base: Path | None = None) -> dict[str, dict[str, str]]:
    path = (base or venv_dir()) / "versions.json"
    return json.loads(path.read_text()) if path.exists() else {}


def describe(systems: list[str]) -> str:
    """The recorded versions of the peers among systems, for a report's header."""
    recorded = versions()
    parts = []
    for peer in [s for s in systems if s in recorded]:
        deps = ", ".join(f"{k} {v}" for k, v in recorded[peer].items() if k not in (peer, "python"))
        parts.append(f"{peer} {recorded[peer].get(peer, '?')} ({deps})")
    return "peers: " + ("; ".join(parts) or "none")


def installed_versions(peer: str, base: Path) -> dict[str, str]:
    names = json.dumps(VERSIONS[peer])
    code = ("import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) "
            f"for n in {names}}} | {{'python': sys.version.split()[0]}}))")
    out = subprocess.run([str(python(peer, base)), "-c", code], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


def create(peer: str, base: Path) -> dict[str, str]:
    target = base / peer
    if not available(peer, base):
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run([str(python(peer, base)), "-m", "pip", "install", "--quiet", "--upgrade",
                    *PEERS[peer]], check=True)
    return installed_versions(peer, base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_envs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"where the venvs go (default: ${ENV} or .bench-venvs/)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma list among {', '.join(PEERS)} (default: all)")
    args = parser.parse_args(argv)
    base = (args.dir or venv_dir()).resolve()
    base.mkdir(parents=True, exist_ok=True)
    recorded = versions(base)
    for peer in [p.strip() for p in args.peers.split(",") if p.strip()]:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r}; choose among {', '.join(PEERS)}")
        recorded[peer] = create(peer, base)
        print(f"{peer}: {python(peer, base)} "
              + ", ".join(f"{k} {v}" for k, v in recorded[peer].items()), flush=True)
        (base / "versions.json").write_text(json.dumps(recorded, indent=1, sort_keys=True))
    if args.dir is not None and args.dir.resolve() != venv_dir().resolve():
        print(f"point the benchmarks at them with {ENV}={base}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
