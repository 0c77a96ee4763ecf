"""Throwaway gunicorn servers for the tests that need real worker
processes: an application served on a free 127.0.0.1 port, ready once it
answers ``/health``, stopped by PID.

No fixtures here, so that the soak script can use it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.redis_servers import free_port
from tests.redis_servers import stop_process

#: The repository root, always on the PYTHONPATH of the servers.
ROOT = Path(__file__).resolve().parents[1]


class GunicornServer:
    """gunicorn serving ``app`` on 127.0.0.1. As a context manager it is
    started and stopped.

    :param app: the WSGI application, as gunicorn names it
        (``module:create_app()``).
    :param options: gunicorn's command-line options (workers, timeouts).
    :param env: environment variables of the app, added to this process's.
    :param log: the file for gunicorn's own log, appended to.
    :param pythonpath: directories the app is imported from, besides the
        repository root.
    """

    def __init__(
        self,
        app: str,
        options: Sequence[str],
        env: dict[str, str],
        log: Path,
        pythonpath: Sequence[Path] = (),
    ) -> None:
        self.port = free_port()
        self.app = app
        self.options = list(options)
        self.env = env
        self.log = log
        self.pythonpath = [ROOT, *pythonpath]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until it answers ``/health``; stop it if it
        does not.

        :param timeout: seconds to wait for the answer.
        """
        env = {
            **os.environ,
            **self.env,
            "PYTHONPATH": os.pathsep.join(str(path) for path in self.pythonpath),
        }
        # The server writes to its own copy of the descriptor.
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    *self.options,
                    self.app,
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until it answers ``/health``.

        :param timeout: seconds to wait.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as rv:
                    if rv.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                # Refused before the socket is bound, or a worker still booting.
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer:\n{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def worker_pids(self) -> set[int]:
        """The PIDs of the master's current worker processes."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def stop(self) -> None:
        """Stop it with ``SIGTERM``, if it runs; its workers finish their
        requests first.
        """
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout=15)

    def __enter__(self) -> GunicornServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
