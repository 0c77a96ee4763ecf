-- One conversation's metadata and data, read together, as stored (expired
-- or not).
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
-- ARGV[1]  the conversation id
--
-- Returns  {metadata, data}: each false where the field is missing

return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
