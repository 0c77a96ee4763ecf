-- One request's changes, decided by the rules of plan_commit (drop expired
-- conversations, delete ended subtrees, evict least recently used stacks
-- to fit, save), then the release of its locks, in one atomic call. Every
-- write comes after every check, so a refused commit writes nothing.
--
-- A batch that only saves, where nothing can have expired (the metadata's
-- EARLIEST is later than now) and the namespace holds at most max_count
-- conversations afterwards, is what the rules would save unchanged: it is
-- written without reading the other conversations.
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
-- KEYS[3]  the namespace registry of the namespace's shard
-- KEYS[4...] the keys of the locks to release, in the order of the unlocks
-- ARGV[1]  now, by the store's clock (seconds)
-- ARGV[2]  the namespace, as the registry lists it
-- ARGV[3]  max_count
-- ARGV[4]  the earliest expiry of the saves ("" without saves)
-- ARGV[5]  the latest expiry of the saves ("" without saves)
-- ARGV[6]  "1" to clear the namespace first (end_all), else ""
-- ARGV[7]  the start of a stack lock's key (see acquire.lua)
-- ARGV[8...] counted lists, each a count n then its items:
--          keep roots: root...
--          held roots: root... (stacks the request read under their locks:
--            one that is gone was removed by another request meanwhile,
--            and nothing of it is written back)
--          saves: (cid, metadata)... then (cid, data)... (2n pairs)
--          deletes: (cid, reason or "" to report nothing)...
--          unlocks: (root, owner token)...
--
-- Returns
--   {COMMITTED, cid, reason, cid, reason, ...}  the conversations removed,
--               with the reasons to report
--   {LEASE_LOST, root}  the request no longer holds the lock of stack root
--               (its lease ran out, whether or not another request took it
--               since): nothing was written; the locks it still held are
--               released
--   an error starting with TRYAGAIN when a lock that keeps the namespace's
--               keys (HOLD) cannot be read: a Redis Cluster slot migrating
--               away while the namespace's keys are still on this node
--               (nothing was written)

local meta_key, data_key, registry = KEYS[1], KEYS[2], KEYS[3]
local now, namespace, max_count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local low, high, clear = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local lock_prefix = ARGV[7]

-- Where each list starts in ARGV, and its length: the items are read in
-- place, so that the common commit builds no tables.
local keeps_at = 9
local keeps_n = tonumber(ARGV[8])
local helds_n = tonumber(ARGV[keeps_at + keeps_n])
local helds_at = keeps_at + keeps_n + 1
local saves_n = tonumber(ARGV[helds_at + helds_n])
local metas_at = helds_at + helds_n + 1
local datas_at = metas_at + 2 * saves_n
local deletes_n = tonumber(ARGV[datas_at + 2 * saves_n])
local deletes_at = datas_at + 2 * saves_n + 1
local unlocks_n = tonumber(ARGV[deletes_at + 2 * deletes_n])
local unlocks_at = deletes_at + 2 * deletes_n + 1

-- Fields are written and removed in slices, so that no call gets more
-- arguments than Lua can pass.
local function slices(command, key, list, first, last)
  for i = first, last, 1000 do
    redis.call(command, key, unpack(list, i, math.min(i + 999, last)))
  end
end

-- One read for the header, whether each save exists and whether each
-- held stack is still there.
local fields = {EARLIEST, KEEP, HOLD}
for i = metas_at, datas_at - 1, 2 do fields[#fields + 1] = ARGV[i] end
for i = helds_at, helds_at + helds_n - 1 do fields[#fields + 1] = ARGV[i] end
local got = redis.call('HMGET', meta_key, unpack(fields))
local earliest, keep, holding = tonumber(got[1]), tonumber(got[2]), got[3]
-- After the header, got[HEAD + j] tells whether save j exists and
-- got[HEAD + saves_n + j] whether held stack j is still there.
local HEAD = 3

local held, lost = {}, nil
for j = 1, unlocks_n do
  if owns(KEYS[3 + j], ARGV[unlocks_at + 2 * j - 1]) then
    held[#held + 1] = KEYS[3 + j]
  else
    lost = lost or ARGV[unlocks_at + 2 * j - 2]
  end
end
if lost then
  if #held > 0 then redis.call('DEL', unpack(held)) end
  return {LEASE_LOST, lost}
end
-- The other locks that keep the namespace's keys, read before any write.
local lefts = holding and hold_lefts(holding, lock_prefix)

-- Write the header and the saves (all of them, or those kept[cid]), then
-- release the locks. new_high is the latest expiry left in the namespace,
-- nil when none is left.
local function write(kept, new_earliest, new_high)
  local extra = {}
  local until_ = nil
  if new_high == nil then
    -- No conversation left: nothing to keep, nothing to register.
    redis.call('HDEL', meta_key, EARLIEST, KEEP)
    redis.call('DEL', data_key)
    redis.call('ZREM', registry, namespace)
  else
    if new_earliest ~= earliest then
      extra[#extra + 1] = EARLIEST
      extra[#extra + 1] = exact(new_earliest)
    end
    if not keep or new_high > keep then
      until_ = keep_until(new_high, now)
      extra[#extra + 1] = KEEP
      extra[#extra + 1] = exact(until_)
    end
  end
  if saves_n > 0 and not kept then
    slices('HSET', meta_key, ARGV, metas_at, datas_at - 1)
    slices('HSET', data_key, ARGV, datas_at, datas_at + 2 * saves_n - 1)
  elseif saves_n > 0 then
    local metas, datas = {}, {}
    for j = 0, saves_n - 1 do
      local cid = ARGV[metas_at + 2 * j]
      if kept[cid] then
        metas[#metas + 1] = cid
        metas[#metas + 1] = ARGV[metas_at + 2 * j + 1]
        datas[#datas + 1] = cid
        datas[#datas + 1] = ARGV[datas_at + 2 * j + 1]
      end
    end
    if #metas > 0 then
      slices('HSET', meta_key, metas, 1, #metas)
      slices('HSET', data_key, datas, 1, #datas)
    end
  end
  if #extra > 0 then redis.call('HSET', meta_key, unpack(extra)) end
  if until_ then extend(meta_key, data_key, registry, namespace, keep, until_, now) end
  if #held > 0 then redis.call('DEL', unpack(held)) end
  if lefts and new_high ~= nil then
    local released = {}
    for _, key in ipairs(held) do released[key] = true end
    unhold(meta_key, data_key, until_ or keep, now, lock_prefix, lefts, released)
  end
end

-- The shortcut (rules.only_saves): nothing to delete or clear, every held
-- stack still there, nothing expired, everything fits.
local all_held = true
for j = 1, helds_n do
  if not got[HEAD + saves_n + j] then all_held = false end
end
if deletes_n == 0 and not clear and all_held and saves_n > 0 then
  local before = redis.call('HLEN', data_key)
  if before == 0 or (earliest and earliest > now) then
    local count = before
    for j = 1, saves_n do
      if not got[HEAD + j] then count = count + 1 end
    end
    if count <= max_count then
      -- Renewing moves expiries later: the bound stays a bound.
      local new_earliest = low
      if before > 0 and earliest < low then new_earliest = earliest end
      write(nil, new_earliest, high)
      return {COMMITTED}
    end
  end
end

-- The full rules, on the metadata of the whole namespace.
local records, order = {}, {}
local flat = redis.call('HGETALL', meta_key)
for i = 1, #flat, 2 do
  local id = flat[i]
  if string.sub(id, 1, 1) ~= '~' then
    local expires, ended, root, parent, access = parse(flat[i + 1])
    records[id] = {x = expires, e = ended, r = root, p = parent, a = access}
    order[#order + 1] = id
  end
end

-- Held stacks that are gone: none of their saves is written back.
local lost = {}
for i = helds_at, helds_at + helds_n - 1 do
  if not records[ARGV[i]] then lost[ARGV[i]] = true end
end
local saving = {}
for j = 0, saves_n - 1 do
  local expires, ended, root, parent, access = parse(ARGV[metas_at + 2 * j + 1])
  if not lost[root] then
    saving[ARGV[metas_at + 2 * j]] = {x = expires, e = ended, r = root, p = parent, a = access}
  end
end

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
  if r.x <= now and not saving[id] then
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
  if r.p ~= '~' then
    local list = children[r.p] or {}
    list[#list + 1] = id
    children[r.p] = list
  end
end
for _, id in ipairs(order) do
  if records[id] then link(id, records[id]) end
end
for j = 0, saves_n - 1 do
  local cid = ARGV[metas_at + 2 * j]
  if saving[cid] then link(cid, saving[cid]) end
end

for j = 0, deletes_n - 1 do
  local d = {ARGV[deletes_at + 2 * j], ARGV[deletes_at + 2 * j + 1]}
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

for cid, r in pairs(saving) do records[cid] = r end

local live, stacks = 0, {}
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
for _, id in ipairs(order) do
  if records[id] and not saving[id] then tally(id, records[id]) end
end
for j = 0, saves_n - 1 do
  local cid = ARGV[metas_at + 2 * j]
  if saving[cid] and records[cid] then tally(cid, records[cid]) end
end

local excess = live - max_count
if excess > 0 then
  local keep_root = {}
  for i = keeps_at, keeps_at + keeps_n - 1 do keep_root[ARGV[i]] = true end
  local candidates = {}
  for root, stack in pairs(stacks) do
    if not keep_root[root] then candidates[#candidates + 1] = stack end
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

if #delete > 0 then
  slices('HDEL', meta_key, delete, 1, #delete)
  slices('HDEL', data_key, delete, 1, #delete)
end
local new_earliest, new_high = nil, nil
for _, r in pairs(records) do
  if not new_earliest or r.x < new_earliest then new_earliest = r.x end
  if not new_high or r.x > new_high then new_high = r.x end
end
-- The saves the rules kept: not lost, not deleted, not evicted.
local kept = {}
for cid, r in pairs(saving) do
  if records[cid] == r then kept[cid] = true end
end
write(kept, new_earliest, new_high)

local out = {COMMITTED}
for _, v in ipairs(destroyed) do out[#out + 1] = v end
return out
