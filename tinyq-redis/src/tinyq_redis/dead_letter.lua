-- Move a leased entry to the queue's dead-letter stream, with why; with a result key, store
-- the job's failure in the same step, so whoever sees the failure finds the dead letter.
-- A failure is stored as its body twice: the list's length tells a failure (2) from a
-- success (1) without decoding the body, and every reader (LINDEX 0, BRPOPLPUSH of the key to
-- itself) still sees the body.
-- KEYS: stream, dead stream, jobs hash, recovered hash[, result key]; ARGV: group, entry id,
-- job id, body, reason, error, attempts, verified ("1", or "0": the message failed its
-- signature check, so its job id is a claim and the job's mark stays)[, result ttl ms, result
-- body]
-- Returns 0 when the entry was no longer pending (someone else owns it now); 2 when the job
-- had succeeded already (it ran twice, a lease lost while it ran): the entry is settled, the
-- success kept and no dead letter added; else 1.
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
redis.call("HDEL", KEYS[4], ARGV[2])
local mark = redis.call("HGET", KEYS[3], ARGV[3])
-- else the mark is a newer entry's (see settle.lua); an unverified message's id is a claim
if ARGV[8] == "1" and (mark == ARGV[2] or mark == "q") then
  redis.call("HDEL", KEYS[3], ARGV[3])
end
if KEYS[5] then
  if redis.call("LLEN", KEYS[5]) == 1 then
    return 2
  end
  redis.call("DEL", KEYS[5])
  redis.call("RPUSH", KEYS[5], ARGV[10], ARGV[10])
  redis.call("PEXPIRE", KEYS[5], tonumber(ARGV[9]))
end
local now = redis.call("TIME")
-- "v": whether the job id was verified; requeue_dead.lua leaves an unverified id's state alone.
redis.call("XADD", dead, "*", "id", ARGV[3], "b", ARGV[4], "reason", ARGV[5], "error", ARGV[6],
  "attempts", ARGV[7], "at", now[1] .. "." .. string.format("%06d", tonumber(now[2])),
  "v", ARGV[8])
return 1
