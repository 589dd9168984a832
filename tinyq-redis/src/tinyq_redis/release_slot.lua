-- Free a concurrency slot (JobLimits.release_slot) and wake the key's first waiter whose job
-- is delayed (given back to wait for a slot): it becomes due now, and the mover is woken as
-- for an enqueue (schedule.lua). A waiter whose job is not delayed yet, and that waited less
-- than ARGV[2] ms (its give-back is on its way), keeps its place; an older one (its job ran,
-- or was cancelled) is dropped. A few waiters per call. A re-sent call frees nothing and
-- wakes nobody.
-- KEYS: slots zset, waiters zset, the queue's delayed zset, its wake list
-- ARGV: holder, ms a waiter may wait for its job to be delayed
-- Returns 1 when a waiter was woken, else 0.
if redis.replicate_commands then redis.replicate_commands() end  -- TIME below (Redis < 5)
local slots, waiters, delayed, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call("ZREM", slots, ARGV[1]) == 0 then
  return 0
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local first = redis.call("ZRANGE", waiters, 0, 9, "WITHSCORES")
for i = 1, #first, 2 do
  local holder, since = first[i], tonumber(first[i + 1])
  local due = redis.call("ZSCORE", delayed, holder)
  if due and tonumber(due) > now then
    redis.call("ZREM", waiters, holder)
    redis.call("ZADD", delayed, now, holder)
    redis.call("LPUSH", wake, 1)
    redis.call("LTRIM", wake, 0, 0)
    return 1
  end
  if since < now - tonumber(ARGV[2]) then
    redis.call("ZREM", waiters, holder)
  end
end
return 0
