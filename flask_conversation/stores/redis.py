"""A store shared by every process and machine: one Redis key per
conversation, locks and the commit rules run inside Redis.

The keys of one namespace, all under one hash tag, so that a namespace lives
in one slot of a Redis Cluster and a script may touch any of them::

    <prefix>{<shard>}:<ns>:c:<cid>    one record (JSON), expires natively
    <prefix>{<shard>}:<ns>:l:<root>   the lock of one stack (owner token)
    <prefix>{<shard>}:<ns>:i          index: cid -> small JSON metadata,
                                      and ~e -> the earliest expiry
    <prefix>{<shard>}:namespaces      the shard's namespaces, by expiry

``<shard>`` is derived from a hash of the namespace (:func:`shard_tag`), so
a namespace can be any string without breaking the tag, and the shard's
namespace registry shares the slot: a commit keeps it up to date in the same
script call, and listing namespaces reads the registries, never scanning
the keyspace. ``<ns>`` is the namespace percent-encoded (:func:`escape`),
so keys of different namespaces never collide.

The index holds what the commit rules need (parent, root, last access,
timeout, ended), so a commit never reads the records' data, and a lower
bound of the namespace's earliest expiry, so that a commit which only
saves, where nothing can have expired and everything fits, does not read
the index either: its cost does not grow with the namespace.
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import secrets
import time
import typing as t
from datetime import datetime
from datetime import timezone

from ..errors import BusyConversation
from ..errors import ConversationStoreError
from ..serialization import Serializer
from .base import ConversationStore
from .base import system_clock
from .records import Acquired
from .records import CommitBatch
from .records import ConversationInfo
from .records import ConversationRecord
from .records import Destroyed

if t.TYPE_CHECKING:  # pragma: no cover
    import redis
    import redis.cluster

# Follow the parent links from a cid to its root, check that every record is
# live by the store's clock, optionally take the root's lock, and return the
# chain root first. One call, so lock and load cannot interleave with another
# request's commit. With the lock, a small namespace's index comes along
# (as one JSON text, decoded only if the request lists its namespace).
#   KEYS[1]  the record key of the requested cid (routes the call)
#   ARGV     base, cid, now, token ("" to only load), lease in ms, the most
#            index entries to return, "1" to lock a missing cid as a new root
#   returns  {0} no live chain, {-1} lock busy, {2} missing cid locked,
#            {1, index or "", id, value, id, value, ...}
_CHAIN = """
local base, now, token, lease = ARGV[1], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local function missing()
  if ARGV[7] ~= '1' or token == '' then return {0} end
  if redis.call('SET', base .. 'l:' .. ARGV[2], token, 'NX', 'PX', lease) then
    return {2}
  end
  return {-1}
end
local ids, values = {}, {}
local id = ARGV[2]
while id do
  if #ids >= 1024 then return missing() end
  local value = redis.call('GET', base .. 'c:' .. id)
  if not value then return missing() end
  local r = cjson.decode(value)
  if r.a + r.t <= now then return missing() end
  ids[#ids + 1] = id
  values[#values + 1] = value
  id = r.p
end
local root = ids[#ids]
if token ~= '' then
  if not redis.call('SET', base .. 'l:' .. root, token, 'NX', 'PX', lease) then
    return {-1}
  end
  -- A stack never expires while a request holds it.
  for _, cid in ipairs(ids) do
    local key = base .. 'c:' .. cid
    if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
  end
end
local out = {1, ''}
if token ~= '' and redis.call('HLEN', base .. 'i') <= tonumber(ARGV[6]) + 1 then
  out[2] = cjson.encode(redis.call('HGETALL', base .. 'i'))
end
for i = #ids, 1, -1 do
  out[#out + 1] = ids[i]
  out[#out + 1] = values[i]
end
return out
"""

# The commit rules of ``plan_commit`` (drop expired records, delete ended
# subtrees, evict least recently used stacks to fit, save), applied and
# followed by the unlocks in one atomic call. Every write comes after every
# check, so a refused commit writes nothing.
#
# The index keeps, in its field ``~e`` (never a cid), a time no record of
# the namespace expires before: a lower bound, since renewing or deleting
# records only moves the true earliest expiry later. A batch that only
# saves, when nothing can have expired and the namespace holds at most
# max_count entries afterwards, is what the rules would save unchanged: it
# is written without reading the index.
#   KEYS[1]  the namespace index
#   ARGV     base, now, the shard's registry, the namespace, max_count,
#            then counted lists: n, keep roots...; n, (cid, meta, value,
#            ttl_ms, expires_at)...; n, (cid, reason or "")...;
#            n, (root, token)...; n, held roots...; then "1" to clear the
#            namespace (end_all) or ""
#   returns  {-1, root} this request no longer holds a lock (its lease ran
#            out, whether or not another request took it): nothing written,
#            {1, cid, reason, cid, reason, ...}
_COMMIT = """
local base, now = ARGV[1], tonumber(ARGV[2])
local index, registry, namespace = KEYS[1], ARGV[3], ARGV[4]
local batch = {m = tonumber(ARGV[5]), k = {}, s = {}, d = {}, u = {}, h = {}}
local at = 6
local function take(list, width)
  local n = tonumber(ARGV[at])
  at = at + 1
  for _ = 1, n do
    local item = {}
    for j = 1, width do item[j] = ARGV[at + j - 1] end
    list[#list + 1] = width == 1 and item[1] or item
    at = at + width
  end
end
take(batch.k, 1)
take(batch.s, 5)
take(batch.d, 2)
take(batch.u, 2)
take(batch.h, 1)
local clear = ARGV[at] == '1'
local EARLIEST = '~e'

local function unlock_all()
  for _, u in ipairs(batch.u) do
    local key = base .. 'l:' .. u[1]
    if redis.call('GET', key) == u[2] then redis.call('DEL', key) end
  end
end

for _, u in ipairs(batch.u) do
  local holder = redis.call('GET', base .. 'l:' .. u[1])
  if holder ~= u[2] then
    unlock_all()
    return {-1, u[1]}
  end
end

-- A stack this request held that another request removed meanwhile
-- (end_all, eviction, expiry) is not written back.
local lost = {}
for _, root in ipairs(batch.h) do
  if redis.call('HEXISTS', index, root) == 0 then lost[root] = true end
end
if next(lost) then
  local kept = {}
  for _, s in ipairs(batch.s) do
    if not lost[cjson.decode(s[2]).r] then kept[#kept + 1] = s end
  end
  batch.s = kept
end

if #batch.d == 0 and not clear and #batch.s == 0 then
  unlock_all()
  return {1}
end

if #batch.d == 0 and not clear then
  local entries = redis.call('HLEN', index)
  local earliest, fits = nil, false
  if entries == 0 then
    fits = #batch.s <= batch.m
  else
    earliest = redis.call('HGET', index, EARLIEST)
    if earliest and tonumber(earliest) > now then
      local count = entries - 1
      for _, s in ipairs(batch.s) do
        if redis.call('HEXISTS', index, s[1]) == 0 then count = count + 1 end
      end
      fits = count <= batch.m
    end
  end
  if fits then
    local low, high = nil, nil
    for _, s in ipairs(batch.s) do
      redis.call('SET', base .. 'c:' .. s[1], s[3], 'PX', s[4])
      redis.call('HSET', index, s[1], s[2])
      local expires = tonumber(s[5])
      if not low or expires < low then low = expires end
      if not high or expires > high then high = expires end
    end
    if not earliest or low < tonumber(earliest) then redis.call('HSET', index, EARLIEST, low) end
    local ttl = math.max(1, math.ceil((high - now) * 1000))
    if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
    redis.call('ZREMRANGEBYSCORE', registry, '-inf', now)
    redis.call('ZADD', registry, 'GT', high, namespace)
    unlock_all()
    return {1}
  end
end

local records, order = {}, {}
local flat = redis.call('HGETALL', index)
for i = 1, #flat, 2 do
  if flat[i] ~= EARLIEST then
    records[flat[i]] = cjson.decode(flat[i + 1])
    order[#order + 1] = flat[i]
  end
end
local saving = {}
for _, s in ipairs(batch.s) do saving[s[1]] = cjson.decode(s[2]) end

local delete, destroyed, gone = {}, {}, {}
local function remove(id, reason)
  records[id] = nil
  if gone[id] then return end
  gone[id] = true
  delete[#delete + 1] = id
  if reason then
    destroyed[#destroyed + 1] = id
    destroyed[#destroyed + 1] = reason
  end
end

-- A record held by this request is being renewed, so it cannot expire.
for _, id in ipairs(order) do
  local r = records[id]
  if r.a + r.t <= now and not saving[id] then
    if r.e then remove(id, nil) else remove(id, 'expired') end
  end
end
if clear then
  for _, id in ipairs(order) do
    local r = records[id]
    if r then
      if r.e then remove(id, nil) else remove(id, 'cleared') end
    end
  end
end

local children = {}
local function link(id, r)
  if r.p then
    local list = children[r.p] or {}
    list[#list + 1] = id
    children[r.p] = list
  end
end
for _, id in ipairs(order) do
  if records[id] then link(id, records[id]) end
end
for _, s in ipairs(batch.s) do link(s[1], saving[s[1]]) end

for _, d in ipairs(batch.d) do
  local pending = {d[1]}
  while #pending > 0 do
    local current = table.remove(pending)
    for _, child in ipairs(children[current] or {}) do pending[#pending + 1] = child end
    children[current] = nil
    if records[current] or saving[current] then
      local reason = d[2]
      if reason == '' or (records[current] and records[current].e) then reason = nil end
      remove(current, reason)
    end
  end
end

for _, s in ipairs(batch.s) do records[s[1]] = saving[s[1]] end

local live, stacks, roots = 0, {}, {}
for _, id in ipairs(order) do
  if records[id] and not saving[id] then roots[#roots + 1] = id end
end
local function tally(id, r)
  if r.e then return end
  live = live + 1
  local stack = stacks[r.r]
  if not stack then
    stack = {root = r.r, last = r.a, ids = {}}
    stacks[r.r] = stack
  end
  stack.ids[#stack.ids + 1] = id
  if r.a > stack.last then stack.last = r.a end
end
for _, id in ipairs(roots) do tally(id, records[id]) end
for _, s in ipairs(batch.s) do
  if records[s[1]] then tally(s[1], records[s[1]]) end
end

local excess = live - batch.m
if excess > 0 then
  local keep = {}
  for _, root in ipairs(batch.k) do keep[root] = true end
  local candidates = {}
  for root, stack in pairs(stacks) do
    if not keep[root] then candidates[#candidates + 1] = stack end
  end
  table.sort(candidates, function(x, y)
    if x.last ~= y.last then return x.last < y.last end
    return x.root < y.root
  end)
  for _, stack in ipairs(candidates) do
    if excess <= 0 then break end
    for _, id in ipairs(stack.ids) do remove(id, 'evicted') end
    excess = excess - #stack.ids
  end
end

for _, id in ipairs(delete) do
  redis.call('DEL', base .. 'c:' .. id)
  redis.call('HDEL', index, id)
end
for _, s in ipairs(batch.s) do
  if records[s[1]] then
    redis.call('SET', base .. 'c:' .. s[1], s[3], 'PX', s[4])
    redis.call('HSET', index, s[1], s[2])
  end
end
local horizon, earliest = 0, nil
for _, r in pairs(records) do
  if r.a + r.t - now > horizon then horizon = r.a + r.t - now end
  if not earliest or r.a + r.t < earliest then earliest = r.a + r.t end
end
-- The registry forgets namespaces that expired, this one included when empty.
redis.call('ZREMRANGEBYSCORE', registry, '-inf', now)
if horizon > 0 then
  redis.call('HSET', index, EARLIEST, earliest)
  redis.call('PEXPIRE', index, math.max(1, math.ceil(horizon * 1000)))
  redis.call('ZADD', registry, now + horizon, namespace)
else
  redis.call('DEL', index)
  redis.call('ZREM', registry, namespace)
end
unlock_all()

local out = {1}
for _, v in ipairs(destroyed) do out[#out + 1] = v end
return out
"""

# Write one record and its index entry, and register the namespace. The
# index's earliest expiry moves earlier if needed; an index that has
# entries but no earliest expiry (written before it was kept) stays
# without one, so that commits keep reading it whole.
#   KEYS[1]  the index; ARGV base, cid, meta, value, ttl_ms, now, registry,
#            namespace, expires_at
_SAVE = """
local index, ttl, now = KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[6])
local earliest = redis.call('HGET', index, '~e')
if (earliest and tonumber(ARGV[9]) < tonumber(earliest))
    or (not earliest and redis.call('HLEN', index) == 0) then
  redis.call('HSET', index, '~e', ARGV[9])
end
redis.call('SET', ARGV[1] .. 'c:' .. ARGV[2], ARGV[4], 'PX', ttl)
redis.call('HSET', index, ARGV[2], ARGV[3])
if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
redis.call('ZADD', ARGV[7], 'GT', now + ttl / 1000, ARGV[8])
"""

# Remove one record and its index entry, and the namespace from the
# registry when it is empty. KEYS[1] the index; ARGV base, cid, registry,
# namespace.
_DELETE = """
redis.call('DEL', ARGV[1] .. 'c:' .. ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('HLEN', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], '~e') == 1 then
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', ARGV[3], ARGV[4]) end
"""

# Every record of a namespace. KEYS[1] the index; ARGV base.
#   returns  {id, value, id, value, ...} (records gone meanwhile are skipped)
_LIST = """
local out = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  local value = id ~= '~e' and redis.call('GET', ARGV[1] .. 'c:' .. id)
  if value then
    out[#out + 1] = id
    out[#out + 1] = value
  end
end
return out
"""

# Release the locks whose owner is the given token. ARGV base, root, token, ...
_UNLOCK = """
local n = 0
for i = 2, #ARGV, 2 do
  local key = ARGV[1] .. 'l:' .. ARGV[i]
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""

#: The index field holding the namespace's earliest expiry (see _COMMIT):
#: never a cid, which has no ``~``.
_EARLIEST = "~e"

#: How many registries the namespaces are spread over; each lives in the
#: slot of the namespaces it lists.
SHARDS = 1024


def shard_tag(namespace: str) -> str:
    """The hash tag content of a namespace's keys: one of :data:`SHARDS`
    short tags, picked by a hash of the namespace, so that any string gives
    a well-formed tag.

    :param namespace: the namespace.
    """
    return f"s{binascii.crc_hqx(namespace.encode(), 0) % SHARDS}"


def escape(namespace: str) -> str:
    """The namespace as it appears in keys: ``%`` and ``:`` percent-encoded,
    so that it never contains the separator that follows it.

    :param namespace: the namespace.
    """
    return namespace.replace("%", "%25").replace(":", "%3A")


def _text(value: t.Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore(ConversationStore):
    """Keeps conversations in Redis, shared by every worker process and
    every machine of an application.

    -   **One key per conversation**, holding the record as JSON (never
        pickled), with native expiry: each commit that renews a record sets
        its time to live to its timeout, so the expiry slides on use. The
        store's clock is honoured too: a record whose
        :attr:`~.ConversationRecord.expires_at` has passed by the clock is
        treated as gone even while Redis still holds it.
    -   **A lock per stack** (keyed by the root's id) that works across
        processes: ``SET NX PX`` with a random owner token and a lease of
        ``lock_lease`` seconds, so a crashed worker's lock expires; released
        only by its owner. A commit whose lease ran out (whether or not
        another request took the lock since) writes nothing and fails with
        :exc:`~flask_conversation.ConversationStoreError`.
    -   **Two round trips** for a request that uses a conversation: one
        script call locks the stack and loads its chain
        (:meth:`acquire`), one applies the commit rules, writes and unlocks
        (:meth:`commit`). A request that does not use a conversation makes
        none. The first call also brings the namespace's index while it
        holds at most :attr:`listing_limit` conversations, so a page that
        lists them (a sidebar calling ``conversations()``) makes no third.
    -   **Redis Cluster**: every key of a namespace carries the same hash
        tag, so a namespace lives in one slot and the scripts work unchanged
        with :class:`redis.cluster.RedisCluster`. The namespaces are spread
        over :data:`SHARDS` tags, and so over the cluster's nodes.
    -   **Outages**: every Redis error becomes
        :exc:`~flask_conversation.ConversationStoreError` (503 with
        ``Retry-After``). Each write is one script, which Redis runs
        atomically, so nothing is ever half written; the next request after
        Redis is back works normally.

    Expired conversations are reported (``conversation_destroyed`` with
    reason ``"expired"``) by the next commit in their namespace. The
    namespace's index remembers them until the last conversation of the
    namespace expires; when a whole namespace expired in Redis, nothing is
    reported.

    Redis should not evict keys by itself (``maxmemory-policy
    noeviction``): an evicted lock lets two requests into one stack, an
    evicted record looks like an expired conversation.

    :param client: a :class:`redis.Redis` or
        :class:`redis.cluster.RedisCluster` client. Its retry and timeout
        settings decide how long a request waits for an unreachable server.
    :param prefix: put before every key; must not contain ``{`` or ``}``.
    :param serializer: see :class:`ConversationStore`.
    :param clock: see :class:`ConversationStore`.
    :param lock_lease: seconds after which a lock that was never released
        expires. Keep it above the longest request.

    .. versionadded:: 0.1
    """

    native_expiry = True

    #: A lock comes with the namespace's index (for
    #: :attr:`~.base.Acquired.listing`) while the namespace holds at most
    #: this many conversations; a larger one is listed by its own call.
    listing_limit = 32

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        prefix: str = "conversation:",
        serializer: Serializer | None = None,
        clock: t.Callable[[], float] = system_clock,
        lock_lease: float = 30.0,
    ) -> None:
        super().__init__(serializer, clock)
        if "{" in prefix or "}" in prefix:
            raise ValueError("The RedisStore prefix must not contain '{' or '}'.")
        if lock_lease <= 0:
            raise ValueError("lock_lease must be positive.")
        self.client: t.Any = client
        self.prefix = prefix
        self.lock_lease = lock_lease
        self._chain = client.register_script(_CHAIN)
        self._commit = client.register_script(_COMMIT)
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._list = client.register_script(_LIST)
        self._unlock = client.register_script(_UNLOCK)

    @classmethod
    def from_url(cls, url: str, **kwargs: t.Any) -> RedisStore:
        """Connect to the Redis server at ``url``.

        :param url: a ``redis://``, ``rediss://`` or ``unix://`` URL; client
            options such as ``socket_timeout`` go in its query string.
        :param kwargs: passed to :class:`RedisStore`.
        """
        import redis

        return cls(redis.Redis.from_url(url), **kwargs)

    # -- keys ------------------------------------------------------------------

    def base(self, namespace: str) -> str:
        """The start of every key of ``namespace``, hash tag included.

        :param namespace: the namespace.
        """
        return f"{self.prefix}{{{shard_tag(namespace)}}}:{escape(namespace)}:"

    def record_key(self, namespace: str, cid: str) -> str:
        """The key holding the record ``cid`` of ``namespace``.

        :param namespace: the namespace.
        :param cid: the conversation id.
        """
        return f"{self.base(namespace)}c:{cid}"

    def lock_key(self, namespace: str, root_id: str) -> str:
        """The key of the lock of one stack.

        :param namespace: the namespace.
        :param root_id: the id of the stack's root.
        """
        return f"{self.base(namespace)}l:{root_id}"

    def index_key(self, namespace: str) -> str:
        """The key of the namespace's index.

        :param namespace: the namespace.
        """
        return f"{self.base(namespace)}i"

    def registry_key(self, namespace: str) -> str:
        """The key of the registry that lists ``namespace``: a sorted set of
        the namespaces of its shard, scored by when their last record
        expires.

        :param namespace: the namespace.
        """
        return f"{self.prefix}{{{shard_tag(namespace)}}}:namespaces"

    # -- helpers ---------------------------------------------------------------

    def _call(self, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        import redis.exceptions

        try:
            return fn(*args, **kwargs)
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as e:
            raise ConversationStoreError(f"Redis: {type(e).__name__}: {e}") from e

    def _ttl_ms(self, record: ConversationRecord, now: float) -> int:
        return max(1, math.ceil((record.expires_at - now) * 1000))

    @staticmethod
    def _meta(record: ConversationRecord) -> str:
        # The record's compact form without its data, plus what the commit
        # rules and the listing read: the root of every record, and the size.
        meta = {k: v for k, v in record.to_dict().items() if k != "d"}
        meta["r"] = record.root_id
        meta["z"] = len(record.data.encode())
        return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def _value(record: ConversationRecord) -> str:
        return json.dumps(record.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def _record(namespace: str, cid: t.Any, value: t.Any) -> ConversationRecord:
        return ConversationRecord.from_dict(namespace, _text(cid), json.loads(value))

    def _run_chain(
        self, namespace: str, cid: str, token: str, claim: bool = False
    ) -> tuple[int, list[ConversationRecord], t.Any]:
        rv = self._call(
            self._chain,
            keys=[self.record_key(namespace, cid)],
            args=[
                self.base(namespace),
                cid,
                repr(float(self.clock())),
                token,
                math.ceil(self.lock_lease * 1000),
                self.listing_limit,
                "1" if claim else "",
            ],
        )
        status = int(rv[0])
        if status != 1:
            return status, [], None
        chain = [self._record(namespace, rv[i], rv[i + 1]) for i in range(2, len(rv), 2)]
        return status, chain, rv[1] or None

    # -- primitives ------------------------------------------------------------

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        """One ``GET``. May return a record that is expired by the store's
        clock but not yet dropped by Redis.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        value = self._call(self.client.get, self.record_key(namespace, cid))
        return None if value is None else self._record(namespace, cid, value)

    def save(self, record: ConversationRecord) -> None:
        """Write the record and its index entry in one script call, with a
        time to live of ``record.expires_at - clock()``.

        :param record: the record to write.
        """
        now = self.clock()
        self._call(
            self._save,
            keys=[self.index_key(record.namespace)],
            args=[
                self.base(record.namespace),
                record.id,
                self._meta(record),
                self._value(record),
                self._ttl_ms(record, now),
                repr(float(now)),
                self.registry_key(record.namespace),
                record.namespace,
                repr(float(record.expires_at)),
            ],
        )

    def delete(self, namespace: str, cid: str) -> None:
        """Remove the record and its index entry in one script call.

        :param namespace: the namespace of the record.
        :param cid: the conversation id.
        """
        self._call(
            self._delete,
            keys=[self.index_key(namespace)],
            args=[self.base(namespace), cid, self.registry_key(namespace), namespace],
        )

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        """Every record of the namespace in one script call, through the
        namespace's index (no scan of the keyspace).

        :param namespace: the namespace to list.
        """
        rv = self._call(self._list, keys=[self.index_key(namespace)], args=[self.base(namespace)])
        return [self._record(namespace, rv[i], rv[i + 1]) for i in range(0, len(rv), 2)]

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        """``SET NX PX`` with a fresh random token, retried with a growing
        pause until ``timeout`` seconds have passed (real time, not the
        store's clock).

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait for another holder.
        """
        token = secrets.token_hex(16)
        key = self.lock_key(namespace, root_id)
        px = math.ceil(self.lock_lease * 1000)
        for _ in _waits(timeout):
            if self._call(self.client.set, key, token, nx=True, px=px):
                return token
        return None

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        """Delete the lock only if ``token`` still owns it (compare and
        delete in one script call).

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`lock` returned.
        """
        self._call(
            self._unlock,
            keys=[self.lock_key(namespace, root_id)],
            args=[self.base(namespace), root_id, token],
        )

    def namespaces(self) -> dict[str, int]:
        """Every namespace with its number of live records, read from the
        shards' registries and the namespaces' indexes in two pipelined
        batches (no scan of the keyspace). A tool for operators: it reads
        all :data:`SHARDS` registries.
        """
        now = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.zrangebyscore(f"{self.prefix}{{s{shard}}}:namespaces", f"({now!r}", "+inf")
        names = [_text(m) for members in self._call(pipe.execute) for m in members]
        pipe = self.client.pipeline(transaction=False)
        for namespace in names:
            pipe.hgetall(self.index_key(namespace))
        rv: dict[str, int] = {}
        for namespace, metas in zip(names, self._call(pipe.execute), strict=True):
            count = 0
            for field, meta in metas.items():
                if _text(field) == _EARLIEST:
                    continue
                r = json.loads(meta)
                if r["a"] + r["t"] > now:
                    count += 1
            if count:
                rv[namespace] = count
        return rv

    # -- composite operations --------------------------------------------------

    def load_chain(self, namespace: str, cid: str) -> list[ConversationRecord] | None:
        """The chain from the root down to ``cid`` in one script call, or
        ``None`` if a link is missing or expired by the store's clock.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        status, chain, _ = self._run_chain(namespace, cid, "")
        return chain if status == 1 else None

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        """Follow the parent links to the root, take the root's lock and
        load the chain, all in one script call; while the lock is held by
        another request, call again with a growing pause until ``timeout``.

        :param namespace: the namespace to look in.
        :param cid: the conversation id the request named.
        :param timeout: seconds to wait for the stack's lock.
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        return self._acquire(namespace, cid, timeout, claim=False)

    def claim(self, namespace: str, cid: str, timeout: float) -> Acquired:
        """:meth:`acquire`, locking a missing ``cid`` as a new root in the
        same script call.

        :param namespace: the namespace to look in.
        :param cid: the natural id to join or create.
        :param timeout: seconds to wait for the lock.
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        acquired = self._acquire(namespace, cid, timeout, claim=True)
        assert acquired is not None
        return acquired

    def _acquire(self, namespace: str, cid: str, timeout: float, claim: bool) -> Acquired | None:
        token = secrets.token_hex(16)
        for _ in _waits(timeout):
            status, chain, index = self._run_chain(namespace, cid, token, claim)
            if status == 0:
                return None
            if status == 2:
                return Acquired(cid, token, [])
            if status == 1:
                listing = None if index is None else functools.partial(_listing, index)
                return Acquired(chain[0].id, token, chain, listing)
        raise BusyConversation()

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Apply the rules of :func:`~.base.plan_commit` inside Redis
        (drop expired records, delete ended subtrees, evict least recently
        used stacks, write with fresh time to live) and release the batch's
        locks, in one atomic script call. The rules run where the data is,
        so they see every concurrent commit of other stacks of the
        namespace.

        :param namespace: the namespace the changes belong to.
        :param batch: the changes.
        :raise ConversationStoreError: Redis failed, or the request no
            longer holds a lock of the batch (its lease ran out); nothing
            was written.
        """
        if not (batch.saves or batch.deletes or batch.clear):
            if batch.unlock:
                pairs = [self.base(namespace)]
                for root_id, token in batch.unlock.items():
                    pairs += [root_id, token]
                first = next(iter(batch.unlock))
                self._call(self._unlock, keys=[self.lock_key(namespace, first)], args=pairs)
            return []
        now = self.clock()
        args: list[t.Any] = [
            self.base(namespace),
            repr(float(now)),
            self.registry_key(namespace),
            namespace,
            batch.max_count,
            len(batch.keep_roots),
            *sorted(batch.keep_roots),
            len(batch.saves),
        ]
        for r in batch.saves:
            args += [r.id, self._meta(r), self._value(r), self._ttl_ms(r, now)]
            args.append(repr(float(r.expires_at)))
        args.append(len(batch.deletes))
        for cid, reason in batch.deletes.items():
            args += [cid, reason or ""]
        args.append(len(batch.unlock))
        for root_id, token in batch.unlock.items():
            args += [root_id, token]
        args += [len(batch.held), *sorted(batch.held), "1" if batch.clear else ""]
        rv = self._call(self._commit, keys=[self.index_key(namespace)], args=args)
        if int(rv[0]) != 1:
            raise ConversationStoreError(
                f"The lock of stack {_text(rv[1])!r} expired before the request"
                " committed (its lease ran out); nothing was written."
            )
        return [(_text(rv[i]), _text(rv[i + 1])) for i in range(1, len(rv), 2)]


def _listing(index: t.Any, now: float) -> list[ConversationInfo] | None:
    """The live conversations in the raw index :data:`_CHAIN` returned, or
    ``None`` if an entry was written without the fields a summary needs.
    """
    flat = json.loads(index)
    if not isinstance(flat, list):
        # An empty Lua table is encoded as an object.
        return []
    rv = []
    for i in range(0, len(flat), 2):
        if flat[i] == _EARLIEST:
            continue
        r = json.loads(flat[i + 1])
        if "z" not in r:
            return None
        expires_at = r["a"] + r["t"]
        if r.get("e") or expires_at <= now:
            continue
        rv.append(
            ConversationInfo(
                id=flat[i],
                description=r.get("n"),
                parent_id=r.get("p"),
                depth=r.get("h", 0),
                created_at=_utc(r["c"]),
                last_access=_utc(r["a"]),
                expires_at=_utc(expires_at),
                size=r["z"],
            )
        )
    return rv


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _waits(timeout: float) -> t.Iterator[None]:
    """Yield once at once, then after growing pauses until ``timeout``
    seconds have passed, the last time at the deadline.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.002
    while True:
        yield
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
