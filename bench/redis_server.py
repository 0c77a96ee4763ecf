"""A throwaway ``redis-server`` on a free loopback port, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t

#: Where the Debian package installs the server.
DEFAULT_BINARY = "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_cpu() -> int | None:
    """A CPU for Redis alone: the last one this process may use, when it
    may use several and ``taskset`` exists; else ``None``.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None
    return cpus[-1]


class RedisServer:
    """One ``redis-server`` process without persistence, listening on
    127.0.0.1 only. Use it as a context manager.

    :param binary: the server executable.
    :param cpu: pin the server to this CPU (with ``taskset``), so that the
        clients measured never compete with it for a core.
    """

    def __init__(self, binary: str = DEFAULT_BINARY, cpu: int | None = None) -> None:
        self.binary = binary
        self.cpu = cpu
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server's database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers."""
        if not os.path.exists(self.binary):
            raise RuntimeError(f"{self.binary} not found: install the redis-server package.")
        self._dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.port = free_port()
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        self.process = subprocess.Popen(
            [
                *pin,
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start within 10 seconds.")

    def stop(self) -> None:
        """Stop the server by its PID and remove its directory."""
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(self.process.pid, signal.SIGKILL)
                    self.process.wait()
            self.process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()
