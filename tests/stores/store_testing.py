"""What the store tests build records with, and what they count a
RedisStore's requests with: the round trips its client makes and the
commands its servers receive.
"""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
import redis
from conftest import FakeClock
from redis.cluster import RedisCluster

from flask_conversation.stores.base import ConversationStore
from flask_conversation.stores.memory import MemoryStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Destroyed
from tests.redis_servers import RedisServer


class PlanReference(MemoryStore):
    """A ``MemoryStore`` whose commits take the base class's path:
    :func:`~flask_conversation.stores.rules.plan_commit` itself, with no
    shortcut, which the stores' fast paths are held against.
    """

    def apply_batch(self, namespace: str, batch: CommitBatch) -> Destroyed:
        return ConversationStore.apply_batch(self, namespace, batch)


class Records:
    """Builds records in one namespace at the clock's current time."""

    def __init__(self, clock: FakeClock, namespace: str = "ns") -> None:
        self.clock = clock
        self.namespace = namespace

    def __call__(
        self,
        cid: str,
        parent: ConversationRecord | None = None,
        *,
        data: str = '{"n":1}',
        timeout: float = 60.0,
        ended: bool = False,
        description: str | None = None,
        namespace: str | None = None,
    ) -> ConversationRecord:
        now = self.clock()
        return ConversationRecord(
            id=cid,
            namespace=namespace if namespace is not None else self.namespace,
            parent_id=None if parent is None else parent.id,
            root_id=cid if parent is None else parent.root_id,
            depth=0 if parent is None else parent.depth + 1,
            data=data,
            description=description,
            timeout=timeout,
            created_at=now,
            last_access=now,
            ended=ended,
        )


# -- round trips ----------------------------------------------------------------


class CountingConnection(redis.Connection):
    """A connection that counts what it sends. Every sender reads all its
    replies before it sends again, so each send is one round trip,
    however many commands it pipelines.
    """

    sends = 0

    def send_packed_command(self, command: t.Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)


#: The plain-command path: lock, watch and load (one round trip) ...
LOAD = ["SET", "WATCH", "HGETALL", "HMGET"]
#: ... then a renewal's commit and unlock (one more) ...
RENEW = [*LOAD, "MULTI", "HSET", "HSET", "DEL", "EXEC"]
#: ... or any other batch's, by the script on the same connection.
CHANGE = [*LOAD, "UNWATCH", "EVALSHA"]


def counting_deployment(
    kind: str, request: pytest.FixtureRequest
) -> tuple[list[RedisServer], redis.Redis | RedisCluster]:
    """Emptied servers, and a client whose connections count round trips
    (closed at the end of the test).

    :param kind: ``"redis"`` or ``"redis-cluster"``.
    :param request: the test's request, to reach the server fixtures.
    """
    client: redis.Redis | RedisCluster
    if kind == "redis-cluster":
        request.getfixturevalue("redis_cluster_client")  # empties the nodes
        servers: list[RedisServer] = request.getfixturevalue("redis_cluster")
        client = RedisCluster(host=servers[0].host, port=servers[0].port)
        for node in client.get_nodes():
            # The nodes' pools make counting connections from now on.
            pool = node.redis_connection.connection_pool
            pool.connection_class = CountingConnection
            pool.reset()
    else:
        request.getfixturevalue("redis_client")  # empties the server
        server = request.getfixturevalue("redis_server")
        servers = [server]
        pool = redis.ConnectionPool(
            host=server.host, port=server.port, connection_class=CountingConnection
        )
        client = redis.Redis.from_pool(pool)
    request.addfinalizer(client.close)
    return servers, client


class CommandLog:
    """Every command the servers receive from clients, as ``MONITOR``
    shows it; commands run by scripts are left out.
    """

    def __init__(self, servers: list[RedisServer]) -> None:
        self.logs = [_ServerLog(server) for server in servers]

    def take(self) -> list[str]:
        """The commands since the last call, on every server."""
        return [command for log in self.logs for command in log.take()]

    def close(self) -> None:
        for log in self.logs:
            log.close()


class _ServerLog:
    def __init__(self, server: RedisServer) -> None:
        self.entries: list[str] = []
        # Connected before the log starts, so its own setup is not logged.
        self._marker = server.client()
        self._marker.ping()
        self._client = server.client()
        self._monitor = self._client.monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._read)
        self._thread.start()

    def _read(self) -> None:
        while True:
            entry = self._monitor.next_command()
            if entry["command"] == "ECHO end-of-log":
                return
            if entry["client_type"] != "lua":
                self.entries.append(entry["command"].split(" ", 1)[0].upper())

    def take(self) -> list[str]:
        self._marker.echo("round-trip-marker")
        deadline = time.monotonic() + 10
        while "ECHO" not in self.entries and time.monotonic() < deadline:
            time.sleep(0.01)
        end = self.entries.index("ECHO")
        commands = self.entries[:end]
        del self.entries[: end + 1]
        return commands

    def close(self) -> None:
        self._marker.echo("end-of-log")
        self._thread.join(10)
        self._monitor.__exit__()
        self._client.close()
        self._marker.close()
