-- A rate limit's next free slot (JobLimits.book_rate), GCRA used as a scheduler: each
-- booking gets the slot after the last one (the theoretical arrival time, tat), or now after
-- a quiet spell, with up to burst slots at once. A token booked already gets its slot back
-- (redis-py re-sends a command after a socket timeout: it must not book twice).
-- KEYS: tat (string), bookings (zset token -> slot ms), both under the queue's hash tag
-- ARGV: interval ms, burst, token, bookings kept ms after their slot
-- Returns the ms until the slot (as a string: it has a fraction).
if redis.replicate_commands then redis.replicate_commands() end  -- TIME below (Redis < 5)
local tat_key, bookings = KEYS[1], KEYS[2]
local interval, burst, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local kept = tonumber(ARGV[4])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local booked = redis.call("ZSCORE", bookings, token)
if booked then
  return string.format("%.3f", math.max(0, tonumber(booked) - now))
end
local tat = tonumber(redis.call("GET", tat_key) or "0")
local slot = math.max(now, tat - (burst - 1) * interval)
local next_tat = math.max(tat, now) + interval
redis.call("SET", tat_key, string.format("%.3f", next_tat))
redis.call("PEXPIREAT", tat_key, math.ceil(next_tat) + 1000)
redis.call("ZREMRANGEBYSCORE", bookings, "-inf", string.format("(%.3f", now - kept))
redis.call("ZADD", bookings, string.format("%.3f", slot), token)
redis.call("PEXPIREAT", bookings, math.ceil(math.max(slot, next_tat)) + kept)
return string.format("%.3f", slot - now)
