"""Real processes for the fault and load tests: a gunicorn running
:mod:`tests.hardening.serverapp`, listening on 127.0.0.1 only and stopped
by PID. The Redis servers are :class:`tests.redis_servers.RedisServer`.

No fixtures here, so that the soak script can use it too.
"""

from __future__ import annotations

from pathlib import Path

from tests.gunicorn_servers import GunicornServer


class Gunicorn(GunicornServer):
    """gunicorn serving ``tests.hardening.serverapp:create_app()``.

    :param env: ``FC_*`` settings of the app (see :mod:`serverapp`).
    :param log: the file for gunicorn's own log.
    :param workers: worker processes.
    :param threads: threads per worker (``gthread``).
    """

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2, threads: int = 4) -> None:
        super().__init__(
            "tests.hardening.serverapp:create_app()",
            [
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
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
            ],
            env,
            log,
        )
