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
-- ARGV[1]  now, by the store's clock (seconds)
-- ARGV[2]  the namespace, as the registry lists it
-- ARGV[3]  max_count
-- ARGV[4...] counted lists, each a count then its items:
--          keep roots: root...
--          saves: (cid, metadata, data)...
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

local meta_key, data_key, registry = KEYS[1], KEYS[2], KEYS[3]
local now, namespace, max_count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local at = 4
local function take(width)
  local list, n = {}, tonumber(ARGV[at])
  at = at + 1
  for _ = 1, n do
    if width == 1 then
      list[#list + 1] = ARGV[at]
    else
      local item = {}
      for j = 1, width do item[j] = ARGV[at + j - 1] end
      list[#list + 1] = item
    end
    at = at + width
  end
  return list
end
local keep_roots, saves, deletes, unlocks = take(1), take(3), take(2), take(2)

-- Fields are written and removed in slices, so that no call gets more
-- arguments than Lua can pass.
local function each_slice(list, fn)
  for first = 1, #list, 1000 do
    fn(unpack(list, first, math.min(first + 999, #list)))
  end
end
local function hdel(key, fields)
  each_slice(fields, function(...) redis.call('HDEL', key, ...) end)
end
local function hset(key, pairs)
  -- pairs is flat (field, value, ...): slices of 1000 keep pairs whole.
  each_slice(pairs, function(...) redis.call('HSET', key, ...) end)
end

-- One read for the locks, the header and whether each save exists.
local fields = {EARLIEST, KEEP}
for _, u in ipairs(unlocks) do fields[#fields + 1] = LOCK .. u[1] end
for _, s in ipairs(saves) do fields[#fields + 1] = s[1] end
local got = redis.call('HMGET', meta_key, unpack(fields))
local earliest, keep = tonumber(got[1]), got[2] and tonumber(got[2])

local ms = millis()
local held, lost = {}, nil
for i, u in ipairs(unlocks) do
  if owns(got[2 + i], u[2], ms) then held[#held + 1] = LOCK .. u[1] else lost = lost or u[1] end
end
if lost then
  hdel(meta_key, held)
  return {LEASE_LOST, lost}
end

local saving, low, high = {}, nil, nil
local meta_pairs, data_pairs = {}, {}
for _, s in ipairs(saves) do
  local expires, ended, root, parent, access = parse(s[2])
  saving[s[1]] = {x = expires, e = ended, r = root, p = parent, a = access}
  if not low or expires < low then low = expires end
  if not high or expires > high then high = expires end
end

-- Write the batch's records that the rules keep (by id), the header, then
-- release the locks.
local function write(kept, new_earliest, new_high)
  for _, s in ipairs(saves) do
    if kept[s[1]] then
      meta_pairs[#meta_pairs + 1] = s[1]
      meta_pairs[#meta_pairs + 1] = s[2]
      data_pairs[#data_pairs + 1] = s[1]
      data_pairs[#data_pairs + 1] = s[3]
    end
  end
  local until_ = nil
  if new_high == nil then
    -- No conversation left: nothing to keep, nothing to register.
    redis.call('HDEL', meta_key, EARLIEST, KEEP)
    redis.call('DEL', data_key)
    redis.call('ZREM', registry, namespace)
  else
    if new_earliest ~= earliest then
      meta_pairs[#meta_pairs + 1] = EARLIEST
      meta_pairs[#meta_pairs + 1] = exact(new_earliest)
    end
    if not keep or new_high > keep then
      until_ = keep_until(new_high, now)
      meta_pairs[#meta_pairs + 1] = KEEP
      meta_pairs[#meta_pairs + 1] = exact(until_)
    end
  end
  if #meta_pairs > 0 then hset(meta_key, meta_pairs) end
  if #data_pairs > 0 then hset(data_key, data_pairs) end
  if until_ then extend(meta_key, data_key, registry, namespace, keep, until_, now) end
  hdel(meta_key, held)
end

-- The shortcut: nothing to delete, nothing expired, everything fits.
if #deletes == 0 and #saves > 0 then
  local before = redis.call('HLEN', data_key)
  if before == 0 or (earliest and earliest > now) then
    local count = before
    for i = 1, #saves do
      if not got[2 + #unlocks + i] then count = count + 1 end
    end
    if count <= max_count then
      local all = {}
      for _, s in ipairs(saves) do all[s[1]] = true end
      -- Renewing moves expiries later: the bound stays a bound.
      local new_earliest = low
      if before > 0 and earliest < low then new_earliest = earliest end
      write(all, new_earliest, high)
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
for _, s in ipairs(saves) do link(s[1], saving[s[1]]) end

for _, d in ipairs(deletes) do
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

for _, s in ipairs(saves) do records[s[1]] = saving[s[1]] end

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
for _, s in ipairs(saves) do
  if records[s[1]] then tally(s[1], records[s[1]]) end
end

local excess = live - max_count
if excess > 0 then
  local keep_root = {}
  for _, root in ipairs(keep_roots) do keep_root[root] = true end
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

hdel(meta_key, delete)
hdel(data_key, delete)
local new_earliest, new_high = nil, nil
for _, r in pairs(records) do
  if not new_earliest or r.x < new_earliest then new_earliest = r.x end
  if not new_high or r.x > new_high then new_high = r.x end
end
write(records, new_earliest, new_high)

local out = {COMMITTED}
for _, v in ipairs(destroyed) do out[#out + 1] = v end
return out
