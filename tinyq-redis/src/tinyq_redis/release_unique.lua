-- A finished unique job's lock (UniqueLocks.release_unique): kept ARGV[2] ms more as
-- "k:<id>", or deleted (0), when job ARGV[1] holds it; else nothing changes.
-- KEYS: lock (see enqueue_unique.lua)
local held = redis.call("GET", KEYS[1])
if held ~= "w:" .. ARGV[1] and held ~= "k:" .. ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call("SET", KEYS[1], "k:" .. ARGV[1], "PX", ARGV[2])
else
  redis.call("DEL", KEYS[1])
end
return 1
