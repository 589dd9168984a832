-- Free a concurrency slot (JobLimits.release_slot) and wake the key's first waiter whose job
-- is delayed (given back to wait for a slot): it becomes due now, and the mover is woken as
-- for an enqueue (schedule.lua). Waiters whose job is not delayed (it ran, or was cancelled)
-- are dropped on the way, a few per call. A re-sent call frees nothing and wakes nobody.
-- KEYS: slots zset, waiters zset, the queue's delayed zset, its wake list
-- ARGV: holder
-- Returns 1 when a waiter was woken, else 0.
if redis.replicate_commands then redis.replicate_commands() end  -- TIME below (Redis < 5)
local slots, waiters, delayed, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call("ZREM", slots, ARGV[1]) == 0 then
  return 0
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _ = 1, 10 do
  local first = redis.call("ZRANGE", waiters, 0, 0)[1]
  if not first then
    return 0
  end
  redis.call("ZREM", waiters, first)
  local due = redis.call("ZSCORE", delayed, first)
  if due and tonumber(due) > now then
    redis.call("ZADD", delayed, now, first)
    redis.call("LPUSH", wake, 1)
    redis.call("LTRIM", wake, 0, 0)
    return 1
  end
end
return 0
