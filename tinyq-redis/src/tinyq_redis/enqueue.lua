-- Add messages that are due now to a queue, and mark each in the jobs hash with its entry id.
-- KEYS: stream, jobs hash, delayed zset, result key prefix (same hash tag); ARGV: (job id,
-- body) pairs
-- One call for a batch: far cheaper per job than one XADD command each. A job id that is
-- still queued, delayed or running is skipped, so a producer's retry after a lost reply
-- does not enqueue it twice. A job id whose result is still stored is skipped too: it ran,
-- and running it again is a replay. Returns how many were added.
local stream, jobs, delayed = KEYS[1], KEYS[2], KEYS[3]
if redis.call("EXISTS", stream) == 0 then
  -- The group (_keys.GROUP) comes with the stream, while Redis still has memory for it: a
  -- worker can then drain a queue filled up to maxmemory before it started.
  redis.call("XGROUP", "CREATE", stream, "tinyq", "0", "MKSTREAM")
end
-- #include waiting.lua
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call("EXISTS", KEYS[4] .. ARGV[i]) == 1 then
    -- finished, result still stored: the existing job stands
  elseif not waiting(ARGV[i], redis.call("HGET", jobs, ARGV[i])) then
    local entry = redis.call("XADD", stream, "*", "id", ARGV[i], "b", ARGV[i + 1])
    redis.call("HSET", jobs, ARGV[i], entry)
    added = added + 1
  end
end
return added
