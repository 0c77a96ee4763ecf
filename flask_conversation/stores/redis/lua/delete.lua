-- Remove one conversation (ConversationStore.delete); the namespace leaves
-- its registry with its last conversation.
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
-- KEYS[3]  the namespace registry of the namespace's shard
-- ARGV[1]  the namespace, as the registry lists it
-- ARGV[2]  the cid
--
-- Returns  nothing

local meta_key, data_key, registry = KEYS[1], KEYS[2], KEYS[3]
redis.call('HDEL', meta_key, ARGV[2])
redis.call('HDEL', data_key, ARGV[2])
if redis.call('HLEN', data_key) == 0 then
  redis.call('HDEL', meta_key, EARLIEST, KEEP)
  redis.call('ZREM', registry, ARGV[1])
end
