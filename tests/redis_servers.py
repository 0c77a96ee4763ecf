"""A pytest plugin that runs throwaway Redis servers from the
``redis-server`` binary on free loopback ports: one single server and one
3-master Redis Cluster per test session, each stopped by PID at the end.

Fixtures:

-   ``redis_server``: the session's single :class:`RedisServer`.
-   ``redis_client``: a :class:`redis.Redis` on it, emptied before each test.
-   ``redis_url``: its URL, the server emptied before each test.
-   ``redis_cluster``: the session's three cluster :class:`RedisServer`\\ s.
-   ``redis_cluster_client``: a :class:`redis.cluster.RedisCluster` on
    them, emptied before each test.
-   ``spare_redis_server``: a server of the test's own whose acknowledged
    writes survive a restart, even a kill, to stop and start again.

:class:`RedisServer`, :func:`free_port` and :func:`stop_process` are used
without pytest too (``tests/hardening/soak.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

REDIS_SERVER = os.environ.get(
    "REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server"
)


def free_port(with_bus: bool = False) -> int:
    """A TCP port free on 127.0.0.1 right now. With ``with_bus``, the
    cluster bus port (port + 10000) is free too.
    """
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not with_bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("No free port pair found.")


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Send ``sig`` to a process unless it has exited, wait for it, and
    kill it if it is still running after ``timeout`` seconds.

    :param process: the process.
    :param sig: the signal that asks it to stop.
    :param timeout: seconds to wait before ``SIGKILL``.
    """
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RedisServer:
    """One ``redis-server`` process (no persistence unless asked), listening on
    127.0.0.1 only. It can be stopped, killed, frozen and started again on
    the same port. As a context manager it is started and stopped.

    :param directory: its working directory (append-only file, log).
    :param port: the port; a free one by default.
    :param cluster: run it as a Redis Cluster node.
    :param persist: keep the data across a restart: every change is written
        to the append-only file before it is acknowledged, so that even after
        a kill a restart shows what was really committed.
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        cluster: bool = False,
        persist: bool = False,
    ) -> None:
        self.port = port or free_port(with_bus=cluster)
        self.host = "127.0.0.1"
        self.cluster = cluster
        self.persist = persist
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on its port and wait until it answers."""
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{self.port}.conf",
                "--cluster-node-timeout",
                "5000",
            ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; see"
                    f" {self.directory / 'redis.log'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}.")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop it with ``SIGTERM`` (after :meth:`thaw`), if it runs."""
        self.thaw()
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def kill(self) -> None:
        """``SIGKILL``: no shutdown, no final save; only what was fsynced stays."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, signal.SIGKILL)

    def freeze(self) -> None:
        """``SIGSTOP``: connections stay open, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """``SIGCONT`` after :meth:`freeze`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **kwargs: t.Any) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def info(self, section: str) -> dict[str, t.Any]:
        """``INFO section`` through a connection of its own."""
        with self.client() as c:
            return t.cast(dict[str, t.Any], c.info(section))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> t.Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_server: RedisServer, redis_client: redis.Redis) -> str:
    """The URL of the session's server, emptied before the test."""
    return redis_server.url


@pytest.fixture
def spare_redis_server(tmp_path: Path) -> t.Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persist=True) as server:
        yield server


def _cluster_ok(servers: list[RedisServer]) -> bool:
    for server in servers:
        with server.client() as c:
            info = c.execute_command("CLUSTER", "INFO")
            if isinstance(info, bytes):
                info = info.decode()
            if "cluster_state:ok" not in info or "cluster_known_nodes:3" not in info:
                return False
            # Every node must know the slot owners of the others.
            if len(c.execute_command("CLUSTER", "SLOTS")) != 3:
                return False
    return True


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[list[RedisServer]]:
    base = tmp_path_factory.mktemp("redis-cluster")
    servers: list[RedisServer] = []
    try:
        for i in range(3):
            server = RedisServer(base / str(i), cluster=True)
            servers.append(server)
            server.start()
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        for i, (server, (first, last)) in enumerate(zip(servers, ranges, strict=True)):
            with server.client() as c:
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with servers[0].client() as c:
            for other in servers[1:]:
                c.execute_command("CLUSTER", "MEET", other.host, other.port)
        deadline = time.monotonic() + 30
        while not _cluster_ok(servers):
            if time.monotonic() > deadline:
                raise RuntimeError("The Redis Cluster did not become ready.")
            time.sleep(0.05)
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_cluster_client(redis_cluster: list[RedisServer]) -> t.Iterator[RedisCluster]:
    for server in redis_cluster:
        with server.client() as c:
            c.flushall()
    client = RedisCluster(host=redis_cluster[0].host, port=redis_cluster[0].port)
    try:
        yield client
    finally:
        client.close()
