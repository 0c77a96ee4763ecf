"""Real processes for the fault and load tests: a ``redis-server`` with
durable writes that can be killed and restarted on the same port, and a
gunicorn running :mod:`tests.hardening.serverapp`. Both listen on
127.0.0.1 only and are stopped by PID.

Self-contained (no pytest), so that the soak script can use it too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
#: The repository root, put on the PYTHONPATH of the servers.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], sig: int, timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RedisProcess:
    """A ``redis-server`` that can be killed and started again on its port.
    With ``durable``, acknowledged writes survive a kill (``appendfsync
    always``), so that a restart shows what was really committed.

    :param directory: its working directory (append-only file, log).
    :param durable: write every change to the append-only file before
        acknowledging it.
    """

    def __init__(self, directory: Path, durable: bool = True) -> None:
        self.durable = durable
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on its port and wait until it answers."""
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.durable else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.directory / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}.")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what was fsynced stays."""
        process, self.process = self.process, None
        if process is not None:
            _stop(process, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        process, self.process = self.process, None
        if process is not None:
            _stop(process, signal.SIGTERM)


class Gunicorn:
    """gunicorn serving ``tests.hardening.serverapp:create_app()``.

    :param env: ``FC_*`` settings of the app (see :mod:`serverapp`).
    :param log: the file for gunicorn's own log.
    :param workers: worker processes.
    :param threads: threads per worker (``gthread``).
    """

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2, threads: int = 4) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        self.workers = workers
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: t.IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        self._log_file = open(self.log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--timeout",
                "60",
                # Longer than any pause of the clients: a server that closes
                # an idle connection just as a client reuses it resets it.
                "--keep-alive",
                "30",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                "tests.hardening.serverapp:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until every worker could answer ``/health``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as rv:
                    if rv.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer; see {self.log}")
            time.sleep(0.05)

    def worker_pids(self) -> set[int]:
        """The PIDs of the master's current worker processes."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _stop(process, signal.SIGTERM, timeout=15)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
