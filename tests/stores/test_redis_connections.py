"""The bytes RedisStore's plain-command path sends: packed by hiredis
directly where redis-py would pack with hiredis, they must be exactly what
redis-py's own packer makes of the same commands; a connection with a
packer of its own keeps it.
"""

from __future__ import annotations

import random
import string

import pytest
import redis
from redis.connection import Connection
from redis.connection import Encoder
from redis.connection import PythonRespSerializer

from flask_conversation.stores.redis.connections import lend
from flask_conversation.stores.redis.connections import packer

hiredis = pytest.importorskip("hiredis")


def _text(rng: random.Random) -> str:
    alphabet = string.printable + "é€𝄞\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def _commands(rng: random.Random) -> list[tuple[object, ...]]:
    commands: list[tuple[object, ...]] = []
    for _ in range(rng.randrange(1, 6)):
        name = rng.choice(["SET", "HSET", "HMGET", "WATCH", "EVALSHA", "MULTI"])
        args = [rng.choice([_text(rng), rng.randrange(-(10**12), 10**12)]) for _ in range(5)]
        commands.append((name, *args[: rng.randrange(0, 6)]))
    return commands


def test_hiredis_packs_as_redis_py_does() -> None:
    connection = Connection()
    pack = packer(connection)
    assert pack is not connection.pack_commands
    rng = random.Random(7)
    for _ in range(500):
        commands = _commands(rng)
        assert b"".join(pack(commands)) == b"".join(connection.pack_commands(commands))


def test_large_values_are_packed_whole() -> None:
    # redis-py splits a batch at 6,000 bytes; the bytes sent are the same.
    connection = Connection()
    commands: list[tuple[object, ...]] = [("HSET", "k", "f", "x" * 20_000), ("DEL", "k")]
    packed = packer(connection)(commands)
    assert b"".join(packed) == b"".join(connection.pack_commands(commands))


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_packed_as_redis_py_packs_for_any_encoding(encoding: str) -> None:
    # redis-py's hiredis packer sends text as UTF-8 whatever the client
    # decodes replies with; so does the path.
    connection = Connection(encoding=encoding)
    commands: list[tuple[object, ...]] = [("SET", "k", "café"), ("GET", "k")]
    assert b"".join(packer(connection)(commands)) == b"".join(connection.pack_commands(commands))


def test_a_packer_of_its_own_is_kept() -> None:
    own = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    connection = Connection(command_packer=own)
    assert packer(connection) == connection.pack_commands


def test_a_round_trip_on_a_lent_connection(redis_client: redis.Redis) -> None:
    connection = lend(redis_client, "k")
    try:
        assert connection.send([("SET", "k", "café", "PX", 60_000), ("GET", "k")]) == [
            b"OK",
            "café".encode(),
        ]
    finally:
        connection.release()
