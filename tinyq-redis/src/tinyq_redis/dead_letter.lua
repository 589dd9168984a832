-- Move a leased entry to the queue's dead-letter stream, with why; with a result key, store
-- the job's failure in the same step, so whoever sees the failure finds the dead letter.
-- KEYS: stream, dead stream, jobs hash[, result key]; ARGV: group, entry id, job id, body,
-- reason, error, attempts[, result ttl ms, result body]
-- Returns 0 when the entry was no longer pending (someone else owns it now), else 1.
local stream, dead = KEYS[1], KEYS[2]
-- At maxmemory Redis refuses a script only at its first write, and only when that command may
-- grow memory (XACK does not, and would let the rest through): SETRANGE may, and of nothing
-- on a key that never exists it changes nothing. So this is refused at the limit like any
-- write, and the worker keeps the dead letter to send again.
redis.call("SETRANGE", stream .. ":oom-check", 0, "")
if redis.call("XACK", stream, ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call("XDEL", stream, ARGV[2])
redis.call("HDEL", KEYS[3], ARGV[3])
if KEYS[4] then
  redis.call("RPUSH", KEYS[4], ARGV[9])
  redis.call("LTRIM", KEYS[4], -1, -1) -- a job that ran twice keeps one result, the last
  redis.call("PEXPIRE", KEYS[4], tonumber(ARGV[8]))
end
local now = redis.call("TIME")
redis.call("XADD", dead, "*", "id", ARGV[3], "b", ARGV[4], "reason", ARGV[5], "error", ARGV[6],
  "attempts", ARGV[7], "at", now[1] .. "." .. string.format("%06d", tonumber(now[2])))
return 1
