"""What every figure shares: the run's :class:`Context` (timing, servers),
the call of one booking step, and the Redis helpers of the Redis figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import typing as t

from flask import Flask

from .timing import Settings
from .wsgi import caller
from .wsgi import prepare

if t.TYPE_CHECKING:  # pragma: no cover
    import redis

HEADER = "X-Conversation-Id"


@dataclasses.dataclass
class Context:
    """What every figure may use.

    :param timing: how long and how often to measure.
    :param counts: the numbers of live conversations of figure 4.
    :param redis_url: the throwaway server's URL, ``None`` without Redis.
    :param redis_error: why Redis figures are skipped, if they are.
    :param redis_cpu: the CPU the server is pinned to, ``None`` if it
        shares the machine's CPUs.
    :param postgres_url: the throwaway PostgreSQL server's URL.
    :param postgres_pid: its process id, to read its CPU time.
    :param postgres_error: why the SQL figures are skipped, if they are.
    """

    timing: Settings
    counts: tuple[int, ...] = (1, 10, 100, 1000)
    redis_url: str | None = None
    redis_error: str | None = None
    redis_cpu: int | None = None
    postgres_url: str | None = None
    postgres_pid: int | None = None
    postgres_error: str | None = None

    def redis_client(self, hiredis: bool = True) -> redis.Redis:
        """A new client of the throwaway server.

        :param hiredis: parse replies and pack commands with hiredis where
            it is installed (redis-py's default); ``False`` for redis-py's
            pure-Python parser and packer.
        """
        import redis as redis_py

        assert self.redis_url is not None
        if hiredis:
            return redis_py.Redis.from_url(self.redis_url)
        from redis._parsers import _RESP2Parser
        from redis.connection import Encoder
        from redis.connection import PythonRespSerializer

        encoder = Encoder("utf-8", "strict", False)
        return redis_py.Redis.from_url(
            self.redis_url,
            parser_class=_RESP2Parser,
            command_packer=PythonRespSerializer(6000, encoder.encode),
        )

    @contextlib.contextmanager
    def off_redis_cpu(self) -> t.Iterator[None]:
        """Run this process on the CPUs the server does not use, so that
        wall time measures the request, not the two competing for a core.
        """
        if self.redis_cpu is None:
            yield
            return
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus - {self.redis_cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, cpus)


def hiredis_installed() -> bool:
    """Whether redis-py can use hiredis here."""
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True


def step_caller(app: Flask, cid: str, cookie: str, param: str = "cid") -> t.Callable[[], None]:
    """The call of one ``/step`` of the booking ``cid`` (or, with
    ``param="tab"``, of a hand-rolled tab) sending the ``Cookie`` header
    ``cookie``.
    """
    environ, _ = prepare(app, "/step", query={param: cid}, cookie=cookie or None)
    return caller(app, environ, expect_header=HEADER if param == "cid" else None)


def redis_cpu_clock(client: redis.Redis) -> tuple[str, t.Callable[[], float]]:
    """A clock of the CPU time this thread and the Redis server spend: the
    whole cost of a request that talks to Redis, which unlike the wall
    clock does not count the time other processes on a busy machine hold
    the cores. Reading the server's counter costs both sides the same.

    :param client: a client of the benchmark's own server.
    """

    def clock() -> float:
        info = client.info("cpu")
        return time.thread_time() + float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    return "cpu+redis", clock


def redis_store(ctx: Context, prefix: str, hiredis: bool = True) -> t.Any:
    """A ``RedisStore`` on a new client of the run's server.

    :param ctx: the run's context.
    :param prefix: the store's key prefix.
    :param hiredis: see :meth:`Context.redis_client`.
    """
    from flask_conversation.stores.redis import RedisStore

    return RedisStore(ctx.redis_client(hiredis), prefix=prefix)


def redis_missing(ctx: Context) -> str | None:
    """Why the Redis figures cannot run, or ``None`` if they can.

    :param ctx: the run's context.
    """
    if ctx.redis_error is not None:
        return ctx.redis_error
    try:
        import flask_conversation.stores.redis  # noqa: F401
    except ImportError as e:
        return f"RedisStore not importable ({e})"
    return None
