-- Release stack locks, each only if its owner token still holds it.
--
-- KEYS[1], KEYS[2]... the locks' keys
-- ARGV[1], ARGV[2]... their owner tokens, in the same order
--
-- Returns  how many locks were released

local released = 0
for i = 1, #KEYS do
  if owns(KEYS[i], ARGV[i]) then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
