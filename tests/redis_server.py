"""Throwaway redis-server processes for tests: own port, own folder, stopped at the end.

With CI=true a missing redis-server binary fails the tests instead of skipping them."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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


def free_cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


class RedisServer:
    """One redis-server; ``appendonly`` keeps its data across ``restart``."""

    def __init__(
        self, *, appendonly: bool = False, tls: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.binary = redis_server_binary()
        self.port = free_cluster_port() if "--cluster-enabled" in extra else free_port()
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


def redis_cli(*args: str, timeout: float = 30) -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        pytest.fail("redis-cli is not installed (it comes with redis-server)", pytrace=False)
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


class RedisClusterServers:
    """Three redis-servers joined as a Cluster of three primaries (no replicas), each with
    a third of the 16,384 slots; ``appendonly`` so that a node keeps its data over a restart.
    With ``user``, a client must log in: as ``user`` (password ``password``) or as the
    default user with another password. (Not "default off": Redis 7.0 then refuses to load
    its own append-only file after a restart, NOPERM on every MULTI/EXEC in it.)"""

    def __init__(
        self, size: int = 3, user: str = "", password: str = "", tls: bool = False
    ) -> None:
        everything = ("~*", "&*", "+@all")
        acl = ("--user", "default", "on", f">{password}-default", *everything,
               "--user", user, "on", f">{password}", *everything) if user else ()
        self.auth = ("--user", user, "--pass", password, "--no-auth-warning") if user else ()
        self.userinfo = f"{user}:{password}@" if user else ""
        self.tls = tls
        self.nodes = [
            RedisServer(appendonly=True, tls=tls, extra=(
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000", *acl,
                *(("--tls-cluster", "yes") if tls else ()),
            ))
            for _ in range(size)
        ]
        if tls:  # the nodes talk TLS to each other too: one CA and one certificate for all
            self.ca = self.nodes[0].dir / "ca.crt"
            for node in self.nodes[1:]:
                for name in ("ca.crt", "server.crt", "server.key"):
                    shutil.copy(self.nodes[0].dir / name, node.dir / name)
            self.auth = (*self.auth, "--tls", "--cacert", str(self.ca))

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        if self.tls:
            return f"rediss+cluster://{self.userinfo}{hosts}/?ssl_ca_certs={self.ca}"
        return f"redis+cluster://{self.userinfo}{hosts}"

    def cli(self, node: RedisServer, *args: str) -> str:
        return redis_cli("-p", str(node.port), *self.auth, *args)

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        redis_cli(*self.auth, "--cluster", "create",
                  *(f"127.0.0.1:{n.port}" for n in self.nodes),
                  "--cluster-replicas", "0", "--cluster-yes")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 20) -> None:
        """Until every node says the cluster is up and all agree on the slot map."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [self.cli(n, "cluster", "info") for n in self.nodes]
                maps = {self.cli(n, "cluster", "slots") for n in self.nodes}
                if all("cluster_state:ok" in s for s in states) and len(maps) == 1:
                    return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up")
            time.sleep(0.1)

    def node_of(self, key: str) -> RedisServer:
        slot = int(self.cli(self.nodes[0], "cluster", "keyslot", key))
        for node in self.nodes:
            for line in self.cli(node, "cluster", "nodes").splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for span in fields[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return node
        raise LookupError(f"no node serves {key!r}")

    def node_id(self, node: RedisServer) -> str:
        return self.cli(node, "cluster", "myid").strip()

    def move_slot_of(self, key: str, to: RedisServer) -> None:
        """Migrate the slot of ``key`` and its keys to ``to``, as ``redis-cli --cluster
        reshard`` does: clients meanwhile meet ASK and then MOVED."""
        source = self.node_of(key)
        slot = self.cli(source, "cluster", "keyslot", key).strip()
        src, dst = self.node_id(source), self.node_id(to)
        self.cli(to, "cluster", "setslot", slot, "importing", src)
        self.cli(source, "cluster", "setslot", slot, "migrating", dst)
        auth = ("auth2", *self.userinfo.rstrip("@").split(":")) if self.userinfo else ()
        while True:
            keys = self.cli(source, "cluster", "getkeysinslot", slot, "100").split()
            if not keys:
                break
            self.cli(source, "migrate", "127.0.0.1", str(to.port), "", "0", "5000", *auth,
                     "keys", *keys)
        for node in self.nodes:
            self.cli(node, "cluster", "setslot", slot, "node", dst)
        self.wait_ok()

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelDeployment:
    """A primary, its replica and three sentinels watching them as service ``tinyq``; the
    sentinels fail over one second after the primary stops answering. With ``user``, the data
    nodes want that user's password (as in :class:`RedisClusterServers`); with ``tls``, data
    nodes and sentinels speak TLS only, with one CA."""

    service = "tinyq"

    def __init__(self, user: str = "", password: str = "", tls: bool = False) -> None:
        everything = ("~*", "&*", "+@all")
        extra: tuple[str, ...] = ()
        if user:
            extra = ("--user", "default", "on", f">{password}-default", *everything,
                     "--user", user, "on", f">{password}", *everything,
                     "--masteruser", user, "--masterauth", password)
        if tls:
            extra = (*extra, "--tls-replication", "yes")
        self.user, self.password, self.tls = user, password, tls
        self.primary = RedisServer(tls=tls, extra=extra)
        self.replica = RedisServer(tls=tls, extra=extra)
        self.cli_args: tuple[str, ...] = ()
        if tls:  # one CA for all: the replica and the sentinels check the primary's certificate
            for name in ("ca.crt", "server.crt", "server.key"):
                shutil.copy(self.primary.dir / name, self.replica.dir / name)
            self.cli_args = ("--tls", "--cacert", str(self.primary.dir / "ca.crt"))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="tinyq-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        userinfo = f"{self.user}:{self.password}@" if self.user else ""
        if self.tls:
            ca = self.primary.dir / "ca.crt"
            return f"rediss+sentinel://{userinfo}{hosts}/{self.service}?ssl_ca_certs={ca}"
        return f"redis+sentinel://{userinfo}{hosts}/{self.service}"

    def cli(self, port: int, *args: str, timeout: float = 30) -> str:
        """redis-cli (over TLS when the deployment uses it) to a sentinel or a data node."""
        return redis_cli("-p", str(port), *self.cli_args, *args, timeout=timeout)

    def start(self) -> SentinelDeployment:
        self.primary.start()
        self.replica.extra = (*self.replica.extra, "--replicaof", "127.0.0.1",
                              str(self.primary.port))
        self.replica.start()
        certs = self.primary.dir
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            lines = ["bind 127.0.0.1", f"dir {self.dir}",
                     f"logfile {self.dir / f'sentinel-{port}.log'}"]
            if self.tls:
                lines += ["port 0", f"tls-port {port}", f"tls-cert-file {certs / 'server.crt'}",
                          f"tls-key-file {certs / 'server.key'}",
                          f"tls-ca-cert-file {certs / 'ca.crt'}", "tls-replication yes",
                          "tls-auth-clients no"]
            else:
                lines.append(f"port {port}")
            lines += [
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2",
                f"sentinel down-after-milliseconds {self.service} 1000",
                f"sentinel failover-timeout {self.service} 5000",
            ]
            if self.user:
                lines += [f"sentinel auth-user {self.service} {self.user}",
                          f"sentinel auth-pass {self.service} {self.password}"]
            conf.write_text("\n".join(lines) + "\n")
            self.sentinels.append(subprocess.Popen(
                [redis_server_binary(), str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        self.wait_until(lambda: self.replica_in_sync() and self.sentinels_agree())
        return self

    def master_port(self, sentinel_port: int) -> int | None:
        try:
            reply = self.cli(sentinel_port, "sentinel", "get-master-addr-by-name",
                             self.service, timeout=5).split()
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        return int(reply[1]) if len(reply) == 2 else None

    def sentinels_agree(self, on: RedisServer | None = None) -> bool:
        """All sentinels name ``on`` (default: the primary) and each knows the others."""
        port = (on or self.primary).port
        if any(self.master_port(p) != port for p in self.sentinel_ports):
            return False
        for p in self.sentinel_ports:
            info = self.cli(p, "sentinel", "master", self.service).split()
            if int(info[info.index("num-other-sentinels") + 1]) < 2:
                return False
        return True

    def replica_in_sync(self, replica: RedisServer | None = None) -> bool:
        auth = ("--user", self.user, "--pass", self.password, "--no-auth-warning")
        info = self.cli((replica or self.replica).port, *(auth if self.user else ()),
                        "info", "replication")
        return "master_link_status:up" in info

    @staticmethod
    def wait_until(check: Any, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError("the Sentinel deployment did not reach the expected state")
            time.sleep(0.1)

    def close(self) -> None:
        for proc in self.sentinels:
            proc.kill()
            proc.wait(10)
        self.primary.close()
        self.replica.close()
        shutil.rmtree(self.dir, ignore_errors=True)
