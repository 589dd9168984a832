"""Throwaway redis-server processes for tests: own port, own folder, stopped at the end.

With CI=true a missing redis-server binary fails the tests instead of skipping them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + "; CI must not skip Redis tests", pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server; ``appendonly`` keeps its data across ``restart``."""

    def __init__(
        self, *, appendonly: bool = False, tls: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tinyq-redis-"))
        self.appendonly = appendonly
        self.tls = tls
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        if tls:
            make_certificates(self.dir)

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.dir / 'ca.crt'}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket(self) -> Path:
        return self.dir / "redis.sock"

    def start(self) -> RedisServer:
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = [
                "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                "--tls-cert-file", str(self.dir / "server.crt"),
                "--tls-key-file", str(self.dir / "server.key"),
                "--tls-ca-cert-file", str(self.dir / "ca.crt"),
            ]
        args = [
            self.binary, *ports, "--bind", "127.0.0.1", "--save", "",
            "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.dir), "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--logfile", str(self.dir / "redis.log"), *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:  # through the Unix socket: it answers whatever the TCP side asks for
                with socket.socket(socket.AF_UNIX) as conn:
                    conn.settimeout(0.5)
                    conn.connect(str(self.socket))
                    conn.sendall(b"PING\r\n")
                    reply = conn.recv(64)
                    if reply.startswith((b"+PONG", b"-NOAUTH", b"-NOPERM")):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                logfile = self.dir / "redis.log"
                log = logfile.read_text() if logfile.exists() else ""
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{log[-2000:]}")
            time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def make_certificates(folder: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=tinyq-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf")
