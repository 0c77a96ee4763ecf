-- Write one conversation whole (ConversationStore.save), keeping the
-- header true: EARLIEST moves earlier if needed, and the keys are kept and
-- registered until the conversation expires. A metadata hash that holds
-- conversations but no EARLIEST stays without one, so that commits keep
-- taking the full rules.
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
-- KEYS[3]  the namespace registry of the namespace's shard
-- ARGV[1]  now, by the store's clock (seconds)
-- ARGV[2]  the namespace, as the registry lists it
-- ARGV[3]  the cid
-- ARGV[4]  its metadata
-- ARGV[5]  its data
--
-- Returns  nothing

local meta_key, data_key, registry = KEYS[1], KEYS[2], KEYS[3]
local now, namespace, cid = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local expires = parse(ARGV[4])
local got = redis.call('HMGET', meta_key, EARLIEST, KEEP)
local earliest, keep = tonumber(got[1]), got[2] and tonumber(got[2])
local fields = {cid, ARGV[4]}
if (earliest and expires < earliest) or redis.call('HLEN', data_key) == 0 then
  fields[#fields + 1] = EARLIEST
  fields[#fields + 1] = exact(expires)
end
local until_ = nil
if not keep or expires > keep then
  until_ = keep_until(expires, now)
  fields[#fields + 1] = KEEP
  fields[#fields + 1] = exact(until_)
end
redis.call('HSET', meta_key, unpack(fields))
redis.call('HSET', data_key, cid, ARGV[5])
if until_ then extend(meta_key, data_key, registry, namespace, keep, until_, now) end
