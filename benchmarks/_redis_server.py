"""A throwaway redis-server on a free port, in its own folder, stopped at the end.

Adapted from tests/redis_server.py (benchmarks never import from tests/). It never touches the
server on 6379: it binds 127.0.0.1 on a free port chosen by the kernel.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """`extra`: more redis-server arguments, e.g. ("--replicaof", "127.0.0.1", "<port>")."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tinyq-bench-redis-"))
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Without a db: each system appends its own (/1, /2, ...)."""
        return f"redis://127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.dir / "redis.sock"

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        for part in out.split():
            if part.startswith("v="):
                return part[2:]
        return out.strip()

    def start(self) -> RedisServer:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--databases", "16",
            "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"), *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as conn:
                    conn.settimeout(0.5)
                    conn.connect(str(self.socket))
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                logfile = self.dir / "redis.log"
                log = logfile.read_text() if logfile.exists() else ""
                self.close()
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{log[-2000:]}")
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
