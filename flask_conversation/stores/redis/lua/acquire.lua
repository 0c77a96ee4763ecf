-- Load a conversation's chain; lock its stack in the same call, or lock a
-- stack by its root's id. One call, so that taking a lock and reading what
-- it protects never interleave with another request's commit.
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
-- ARGV[1]  a cid (for LOCK mode: the root id to lock)
-- ARGV[2]  now, by the store's clock (seconds)
-- ARGV[3]  mode: READ (load only), ACQUIRE (lock the chain's stack and load),
--          CLAIM (as ACQUIRE; a missing cid is locked as the root of a new
--          stack), LOCK (lock ARGV[1] whether or not it exists, load nothing)
-- ARGV[4]  the owner token (unused by READ)
-- ARGV[5]  the lease of a lock, milliseconds of Redis time
-- ARGV[6]  send the namespace's metadata along while it holds at most this
--          many conversations
-- ARGV[7]  the start of a stack lock's key; the root's id follows. The root
--          is found here, so its lock key cannot be in KEYS; it carries the
--          namespace's hash tag, so it lives in the same slot.
--
-- Returns
--   {MISSING}   no live conversation ARGV[1] (nothing was locked)
--   {BUSY}      another owner holds the stack's lock (a lock that ARGV[4]
--               holds already counts as taken)
--   {LOCKED}    LOCK mode, or CLAIM of a missing cid: the lock is taken
--   {FOUND, whole, metadata, id, data, id, data, ...}
--               the chain, root first; metadata is a flat cid/metadata array:
--               of every conversation of the namespace when whole is 1 (the
--               mode locks and the namespace is small enough, see ARGV[6]),
--               else of the chain's conversations only.
--   an error starting with TRYAGAIN when the lock's key cannot be made:
--               a Redis Cluster slot migrating away while the namespace's
--               keys are still on this node (nothing was written).

local meta_key, data_key = KEYS[1], KEYS[2]
local cid, now, mode, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local lease, limit, lock_prefix = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]

-- Take the lock of stack root; false if a live lease of another owner has
-- it. Its key expires with the lease, so a crashed owner's lock runs out.
local function lock(root, keep)
  local key = lock_prefix .. root
  -- The script's first write: TRYAGAIN while a migrating slot's keys are
  -- still here (see here) writes nothing.
  if not here('SET', key, token, 'NX', 'PX', lease) and not owns(key, token) then
    return false
  end
  -- A conversation never expires while a request holds it.
  hold(meta_key, data_key, keep, now, lease, root)
  return true
end

if mode == MODE_LOCK then
  local keep = redis.call('HGET', meta_key, KEEP)
  if lock(cid, keep) then return {LOCKED} end
  return {BUSY}
end

-- The metadata: all of it for a small namespace (which the listing uses),
-- else the chain's, one field at a time.
local listed, metas, keep, whole = {}, {}, nil, false
local function lookup(id)
  if metas[id] == nil then metas[id] = redis.call('HGET', meta_key, id) end
  return metas[id]
end
if mode ~= MODE_READ and redis.call('HLEN', data_key) <= limit then
  -- Only the conversations go back: every value sent costs Redis time.
  local flat = redis.call('HGETALL', meta_key)
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    metas[field] = value
    if string.byte(field) ~= TILDE then
      listed[#listed + 1] = field
      listed[#listed + 1] = value
    end
  end
  metas[cid] = metas[cid] or false
  keep = metas[KEEP] or nil
  whole = true
else
  local head = redis.call('HMGET', meta_key, cid, KEEP)
  metas[cid] = head[1]
  keep = head[2] or nil
end

local function absent()
  if mode ~= MODE_CLAIM then return {MISSING} end
  if lock(cid, keep) then return {LOCKED} end
  return {BUSY}
end

-- Up the parent links to the root; every link must be live.
local ids, id = {}, cid
while id ~= '~' do
  local meta = lookup(id)
  if not meta or #ids >= 1024 then return absent() end
  local expires, parent = link_of(meta)
  if expires <= now then return absent() end
  ids[#ids + 1] = id
  id = parent
end

if mode ~= MODE_READ and not lock(ids[#ids], keep) then return {BUSY} end

local data = redis.call('HMGET', data_key, unpack(ids))
local out = {FOUND, whole and 1 or 0, listed}
if not whole then
  for i = #ids, 1, -1 do
    listed[#listed + 1] = ids[i]
    listed[#listed + 1] = metas[ids[i]]
  end
end
for i = #ids, 1, -1 do
  out[#out + 1] = ids[i]
  out[#out + 1] = data[i]
end
return out
