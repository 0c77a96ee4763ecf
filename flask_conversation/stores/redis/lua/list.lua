-- Every conversation of a namespace, metadata and data read together.
--
-- KEYS[1]  the namespace's metadata hash
-- KEYS[2]  the namespace's data hash
--
-- Returns  {metadata, data}: the two hashes as flat field/value arrays; the
--          metadata's "~" fields are not conversations

return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
