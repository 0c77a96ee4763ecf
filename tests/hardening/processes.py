"""Real processes for the fault and load tests: a gunicorn running
:mod:`tests.hardening.serverapp`, listening on 127.0.0.1 only and stopped
by PID. The Redis servers are :class:`tests.redis_servers.RedisServer`.

No fixtures here, so that the soak script can use it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

from tests.redis_servers import free_port
from tests.redis_servers import stop_process

#: The repository root, put on the PYTHONPATH of the servers.
ROOT = Path(__file__).resolve().parents[2]


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
            stop_process(process, signal.SIGTERM, timeout=15)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
