-- A concurrency limit's slot (JobLimits.acquire_slot): a zset of holder -> lease expiry
-- (ms, server clock). Expired leases (a dead worker's) are dropped first; a holder that has a
-- slot renews it; another takes one while fewer than the limit are held. Idempotent: a
-- re-sent call finds its holder and only renews. With the wait flag, a holder that gets no
-- slot becomes a waiter (a zset in the order they first waited; one keeps its place), and one
-- that gets a slot is one no more (release_slot.lua wakes waiters).
-- KEYS: slots zset, waiters zset (both under the queue's hash tag)
-- ARGV: limit, holder, lease ms, wait (1 or 0), ms an idle waiters zset is kept
-- Returns 1 (held) or 0 (all slots held by others).
if redis.replicate_commands then redis.replicate_commands() end  -- TIME below (Redis < 5)
local slots, waiters, limit, holder = KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2]
local lease, wait = tonumber(ARGV[3]), ARGV[4] == "1"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", slots, "-inf", now)
if not redis.call("ZSCORE", slots, holder) and redis.call("ZCARD", slots) >= limit then
  if wait and not redis.call("ZSCORE", waiters, holder) then
    -- after the last waiter, even within one millisecond: the order is the order of calls
    local last = redis.call("ZRANGE", waiters, -1, -1, "WITHSCORES")[2]
    redis.call("ZADD", waiters, math.max(now, (tonumber(last) or 0) + 1), holder)
  end
  if wait then
    redis.call("PEXPIRE", waiters, tonumber(ARGV[5]))
  end
  return 0
end
redis.call("ZADD", slots, now + lease, holder)
if redis.call("PTTL", slots) < lease then
  redis.call("PEXPIRE", slots, lease)
end
if wait then
  redis.call("ZREM", waiters, holder)
end
return 1
