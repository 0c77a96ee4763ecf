-- Release stack locks, each only if its owner token still holds it.
--
-- KEYS[1]  the namespace's metadata hash
-- ARGV     pairs: (root, owner token)...
--
-- Returns  how many locks were released

local meta_key, released = KEYS[1], 0
for i = 1, #ARGV, 2 do
  local field, token = LOCK .. ARGV[i], ARGV[i + 1]
  local value = redis.call('HGET', meta_key, field)
  if value and string.sub(value, 1, #token + 1) == token .. ' ' then
    redis.call('HDEL', meta_key, field)
    released = released + 1
  end
end
return released
