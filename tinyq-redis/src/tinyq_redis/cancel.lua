-- Cancel one job: a waiting or delayed one is deleted (and its "cancelled" outcome stored, when
-- given); a leased one is flagged for the worker holding it. The job's mark in the jobs hash
-- tells where it is (see status.lua).
-- KEYS: stream, jobs hash, delayed zset, payload hash, recovered hash, flag key, result key
-- ARGV: group, job id, grace ("" for none), flag ttl ms, result ttl ms, "1" to store the
-- result (else "0"), result body
-- Returns "removed", "flagged" or "absent".
local stream, jobs, delayed, payloads = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[2]
local mark = redis.call("HGET", jobs, id)
if not mark then
  return "absent"
end

local function removed()
  -- A failure is stored as its body twice, never in place of a success (dead_letter.lua).
  if ARGV[6] == "1" and redis.call("LLEN", KEYS[7]) ~= 1 then
    redis.call("DEL", KEYS[7])
    redis.call("RPUSH", KEYS[7], ARGV[7], ARGV[7])
    redis.call("PEXPIRE", KEYS[7], tonumber(ARGV[5]))
  end
  return "removed"
end

local function flagged()
  redis.call("SET", KEYS[6], ARGV[3], "PX", tonumber(ARGV[4]))
  return "flagged"
end

if mark == "d" then
  if redis.call("ZREM", delayed, id) == 0 then
    return "absent" -- a stale mark: the delayed job is gone
  end
  redis.call("HDEL", payloads, id)
  redis.call("HDEL", jobs, id)
  return removed()
elseif string.find(mark, "^%d+%-%d+$") then
  if not redis.call("XRANGE", stream, mark, mark)[1] then
    return "absent" -- a stale mark: its entry is gone
  end
  if redis.call("XPENDING", stream, ARGV[1], mark, mark, 1)[1] then
    return flagged()
  end
  redis.call("XDEL", stream, mark)
  redis.call("HDEL", KEYS[5], mark)
  redis.call("HDEL", jobs, id)
  return removed()
end
-- An older version's mark ("q") does not say where the job is: flagged, it is settled as
-- cancelled by whichever worker holds it now or reserves it later.
return flagged()
