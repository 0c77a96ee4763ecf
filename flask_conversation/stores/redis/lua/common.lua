-- Shared by every script of RedisStore: put before each one when it is
-- registered, after the status constants (see scripts.py).
--
-- A namespace's metadata hash holds, per conversation, one field named by
-- its cid whose value is (see codec.py)
--
--   <expires> <ended 0|1> <root> <parent or ~> <last access> <timeout> <created> <depth> <size>[ <description>]
--
-- and fields that start with "~", which no cid contains:
--
--   ~e         a time no conversation of the namespace expires before
--   ~x         the time up to which the namespace's keys are kept, and its
--              score in the namespace registry
--   ~h         the roots whose locks keep the keys longer than ~x
--
-- A stack's lock is a key of its own, next to the hashes (same hash tag):
-- <lock prefix><root>, holding the owner's token, expiring with the lease.

-- (EARLIEST, KEEP and HOLD name these fields: see scripts.py.)
-- The byte every non-conversation field starts with.
local TILDE = string.byte('~')
-- Namespace keys outlive their last conversation by this much at most
-- (seconds), so that their expiry and the registry are not written on
-- every commit.
local SLACK = 60

-- When a metadata value expires (store clock), whether it is a one-request
-- survivor, its root, its parent ("~" for a root) and its last access.
local function parse(meta)
  local x, e, r, p, a = string.match(meta, '^(%S+) (%S) (%S+) (%S+) (%S+)')
  return tonumber(x), e == '1', r, p, tonumber(a)
end

-- What following a chain needs of a metadata value: when it expires and
-- its parent.
local function link_of(meta)
  local x, p = string.match(meta, '^(%S+) %S %S+ (%S+)')
  return tonumber(x), p
end

-- redis.call for a key of the namespace's slot that is not in KEYS (a
-- stack's lock), which may not be on this node: while a Redis Cluster slot
-- migrates away with the namespace's keys still here, such a key, if it
-- does not exist, belongs to the importing node. The reply is then
-- TRYAGAIN, as Redis answers a command whose keys are split, and the
-- client asks again once the keys have moved; so a script calls it before
-- it writes anything.
local function here(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if string.find(reply.err, 'non local key', 1, true) then
      error({err = 'TRYAGAIN the slot of ' .. key .. ' is migrating'})
    end
    error(reply)
  end
  return reply
end

-- Whether the lock key of a stack still holds token: a lock whose lease ran
-- out is gone (native expiry), so an owner whose lease ran out finds
-- nothing and owns nothing.
local function owns(lock_key, token)
  return redis.call('GET', lock_key) == token
end

-- Keep the namespace's keys for at least ms milliseconds (a lease) while
-- the lock of stack root holds them, without moving what the namespace is
-- registered with: only a commit does that. HOLD lists the roots whose
-- locks keep the keys.
local function hold(meta_key, data_key, keep, now, ms, root)
  if not keep or tonumber(keep) < now + ms / 1000 then
    for _, key in ipairs({meta_key, data_key}) do
      if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
    end
    local roots = redis.call('HGET', meta_key, HOLD)
    redis.call('HSET', meta_key, HOLD, roots and (roots .. ' ' .. root) or root)
  end
end

-- What each lock listed in holding (HOLD's value) has left of its lease,
-- as {root, milliseconds} pairs; a lock whose lease ran out is gone (-2).
-- Read before the commit writes anything (see here). The locks' keys start
-- with lock_prefix (the namespace's hash tag: the same slot).
local function hold_lefts(holding, lock_prefix)
  local lefts = {}
  for root in string.gmatch(holding, '%S+') do
    lefts[#lefts + 1] = {root, here('PTTL', lock_prefix .. root)}
  end
  return lefts
end

-- Once a commit released its locks (the set released of their keys): keep
-- the keys only as long as their conversations (until keep) and the locks
-- still held of lefts (see hold_lefts) need, no longer than a lock's hold
-- made them live.
local function unhold(meta_key, data_key, keep, now, lock_prefix, lefts, released)
  local need = keep and math.ceil((keep - now) * 1000) or 0
  local still = {}
  for _, pair in ipairs(lefts) do
    local root, left = pair[1], pair[2]
    if left > 0 and not released[lock_prefix .. root] then
      still[#still + 1] = root
      if left > need then need = left end
    end
  end
  if #still == 0 then
    redis.call('HDEL', meta_key, HOLD)
  else
    redis.call('HSET', meta_key, HOLD, table.concat(still, ' '))
  end
  if need > 0 and redis.call('PTTL', meta_key) > need then
    redis.call('PEXPIRE', meta_key, need)
    redis.call('PEXPIRE', data_key, need)
  end
end

-- A number as text that reads back as the same number.
local function exact(number)
  return string.format('%.17g', number)
end

-- How long to keep the namespace's keys when its last conversation
-- expires at high: a little longer, so that the next commits need not
-- move it.
local function keep_until(high, now)
  return high + math.min(high - now, SLACK)
end

-- Keep the namespace's keys (written already) until until_ and register
-- the namespace in its shard's registry with that time; keep is what they
-- were kept until before, nil for a namespace not registered yet.
local function extend(meta_key, data_key, registry, namespace, keep, until_, now)
  local ttl = math.max(1, math.ceil((until_ - now) * 1000))
  -- Never shorter: another request's lock may be holding the keys longer.
  for _, key in ipairs({meta_key, data_key}) do
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  end
  if not keep then
    -- A new registration: the registry forgets what expired meanwhile.
    redis.call('ZREMRANGEBYSCORE', registry, '-inf', now)
  end
  redis.call('ZADD', registry, until_, namespace)
end
