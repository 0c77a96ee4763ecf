"""The Lua scripts of :class:`~flask_conversation.stores.RedisStore`.

Each script lives in ``lua/<name>.lua`` (shipped as package data), starts
with a header stating its ``KEYS``, ``ARGV`` and replies, and names every
key it touches in ``KEYS``. The texts are read once per process with
:mod:`importlib.resources`; :class:`Scripts` registers them once per
client, after a prelude: the reply and mode constants below and the
metadata's field names (:mod:`.keys`), written out as Lua so that both
sides use the same values, and ``lua/common.lua``.
"""

from __future__ import annotations

import enum
import functools
import importlib.resources
import typing as t

from . import keys

if t.TYPE_CHECKING:  # pragma: no cover
    from redis.commands.core import Script


class Reply(enum.IntEnum):
    """The status a script reply starts with."""

    #: No live conversation by that id; nothing was locked.
    MISSING = 0
    #: Another owner holds the stack's lock.
    BUSY = 1
    #: The lock was taken; nothing was loaded.
    LOCKED = 2
    #: The chain follows (and the lock was taken, unless only reading).
    FOUND = 3
    #: The commit was applied; the destroyed conversations follow.
    COMMITTED = 4
    #: The request no longer holds a lock of its batch: nothing was written.
    LEASE_LOST = 5


class Mode(str, enum.Enum):
    """What ``acquire.lua`` does."""

    #: Load a chain without locking (``load_chain``).
    READ = "read"
    #: Lock a chain's stack and load the chain (``acquire``).
    ACQUIRE = "acquire"
    #: As ACQUIRE; lock a missing id as a new root (``claim``).
    CLAIM = "claim"
    #: Lock a stack by its root's id (``lock``).
    LOCK = "lock"


#: The scripts, by file name without ``.lua``.
NAMES = ("acquire", "commit", "save", "delete", "unlock", "list", "load")


def _read(name: str) -> str:
    return (importlib.resources.files(__package__) / "lua" / f"{name}.lua").read_text("utf-8")


@functools.cache
def source(name: str) -> str:
    """The full text of one script, prelude included, as Redis runs it.

    :param name: one of :data:`NAMES`.
    """
    constants = [f"local {r.name} = {r.value}" for r in Reply]
    constants += [f"local MODE_{m.name} = '{m.value}'" for m in Mode]
    fields = {"EARLIEST": keys.EARLIEST, "KEEP": keys.KEEP, "HOLD": keys.HOLD}
    constants += [f"local {name} = '{value}'" for name, value in fields.items()]
    return "\n".join([*constants, _read("common"), _read(name)])


class Scripts:
    """The scripts registered with one client: each is sent by its SHA1
    and loaded into the server the first time the server lacks it.

    :param client: a :class:`redis.Redis` or :class:`redis.cluster.RedisCluster`.
    """

    def __init__(self, client: t.Any) -> None:
        self.acquire: Script = client.register_script(source("acquire"))
        self.commit: Script = client.register_script(source("commit"))
        self.save: Script = client.register_script(source("save"))
        self.delete: Script = client.register_script(source("delete"))
        self.unlock: Script = client.register_script(source("unlock"))
        self.list: Script = client.register_script(source("list"))
        self.load: Script = client.register_script(source("load"))
