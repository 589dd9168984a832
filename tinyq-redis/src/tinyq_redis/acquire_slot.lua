-- A concurrency limit's slot (JobLimits.acquire_slot): a zset of holder -> lease expiry
-- (ms, server clock). Expired leases (a dead worker's) are dropped first; a holder that has a
-- slot renews it; another takes one while fewer than the limit are held. Idempotent: a
-- re-sent call finds its holder and only renews.
-- KEYS: slots zset (under the queue's hash tag)
-- ARGV: limit, holder, lease ms
-- Returns 1 (held) or 0 (all slots held by others).
if redis.replicate_commands then redis.replicate_commands() end  -- TIME below (Redis < 5)
local slots, limit, holder = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local lease = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", slots, "-inf", now)
if not redis.call("ZSCORE", slots, holder) and redis.call("ZCARD", slots) >= limit then
  return 0
end
redis.call("ZADD", slots, now + lease, holder)
if redis.call("PTTL", slots) < lease then
  redis.call("PEXPIRE", slots, lease)
end
return 1
