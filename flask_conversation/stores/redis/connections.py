"""Connections that :class:`~flask_conversation.stores.RedisStore`'s
plain-command path (:mod:`.watched`) borrows from a client's pools, and
the commands and scripts it sends on them, each batch in one round trip.
"""

from __future__ import annotations

import dataclasses
import typing as t

import redis.cluster
import redis.exceptions
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from .arguments import Call

if HIREDIS_AVAILABLE:
    import hiredis

if t.TYPE_CHECKING:  # pragma: no cover
    from redis.commands.core import Script

#: What a cluster answers while a slot moves between nodes; the client
#: itself follows these.
REDIRECTS = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)

T = t.TypeVar("T")
P = t.ParamSpec("P")


def lend(client: t.Any, key: str) -> Lent:
    """A connection to the server that holds ``key``: from the pool of a
    :class:`redis.Redis` client, or of the node of a
    :class:`redis.cluster.RedisCluster` that serves the key's slot.

    :param client: the client.
    :param key: a key of the namespace the connection is for.
    """
    if isinstance(client, redis.cluster.RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        pool = client.get_redis_connection(node).connection_pool
    else:
        pool = client.connection_pool
    raw = pool.get_connection()
    return Lent(pool, raw, packer(raw))


def packer(connection: t.Any) -> t.Callable[[list[tuple[t.Any, ...]]], list[bytes]]:
    """What packs commands for ``connection`` into the bytes it sends.

    With hiredis, redis-py packs each command with ``hiredis.pack_command``
    after checking and converting every argument in Python, which costs a
    request more than the rest of its client work. The path's arguments
    need no conversion (text and integers only), so it calls hiredis
    itself: the same bytes. A connection with a packer of its own (as
    without hiredis, or given as ``command_packer``) packs them itself.

    :param connection: a redis-py connection.
    """
    # redis-py keeps the packer in a private attribute: without it the
    # connection's own packer is used, which is slower, not different.
    own = getattr(connection, "_command_packer", None)
    if not HIREDIS_AVAILABLE or not isinstance(own, HiredisRespSerializer):
        return connection.pack_commands  # type: ignore[no-any-return]
    return _pack_with_hiredis


def _pack_with_hiredis(commands: list[tuple[t.Any, ...]]) -> list[bytes]:
    pack = hiredis.pack_command
    return [b"".join([pack(command) for command in commands])]


@dataclasses.dataclass
class Lent:
    """A connection lent by a pool, given back to it by :meth:`release`.

    :param pool: the pool.
    :param raw: the connection.
    :param pack: packs commands for it (:func:`packer`).
    """

    pool: t.Any
    raw: t.Any
    pack: t.Callable[[list[tuple[t.Any, ...]]], list[bytes]]

    def send(self, commands: list[tuple[t.Any, ...]]) -> list[t.Any]:
        """Send ``commands`` at once and read every reply.

        :param commands: the commands, each a tuple of its arguments.
        :raise redis.exceptions.RedisError: a reply was an error; the
            replies after it are left unread (:meth:`release` it broken).
        """
        raw = self.raw
        raw.send_packed_command(self.pack(commands))
        return [raw.read_response() for _ in commands]

    def attempt(self, call: t.Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run ``call(*args, **kwargs)`` (sends on this connection; it never
        returns ``None``) and return what it returns. On failure the connection
        goes back to its pool (closed, since replies may be left unread),
        and ``None`` is returned when a cluster moved the slot, for the
        scripts, which follow the cluster through the client: a redirected
        command, transaction or script writes nothing. Any other error is
        raised.

        :param call: what to do on the connection.
        :param args: its positional arguments.
        :param kwargs: its keyword arguments.
        """
        try:
            return call(*args, **kwargs)
        except REDIRECTS:
            self.release(broken=True)
            return None
        except BaseException:
            self.release(broken=True)
            raise

    def send_or_give_back(self, commands: list[tuple[t.Any, ...]]) -> list[t.Any] | None:
        """:meth:`send` through :meth:`attempt`.

        :param commands: the commands, each a tuple of its arguments.
        """
        return self.attempt(self.send, commands)

    def script(self, script: Script, call: Call, before: list[str]) -> t.Any:
        """Run ``script`` after the commands ``before`` (each a command
        without arguments), in one round trip; through the client that
        registered it if the server lacks it.

        :param script: the registered script.
        :param call: its keys and arguments.
        :param before: the commands to send first.
        """
        keys, args = call
        commands: list[tuple[t.Any, ...]] = [(command,) for command in before]
        commands.append(("EVALSHA", script.sha, len(keys), *keys, *args))
        self.raw.send_packed_command(self.pack(commands))
        for _ in before:
            self.raw.read_response()
        try:
            return self.raw.read_response()
        except redis.exceptions.NoScriptError:
            # Flushed or restarted: the client loads it again.
            return script(keys=keys, args=args)

    def release(self, broken: bool = False) -> None:
        """Give the connection back to its pool.

        :param broken: replies may be left unread: close it first, so that
            it is never lent out again as it is.
        """
        if broken:
            self.raw.disconnect()
        self.pool.release(self.raw)
