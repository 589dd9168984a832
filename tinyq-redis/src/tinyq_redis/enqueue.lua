-- Add messages that are due now to a queue, and mark each as queued in the jobs hash.
-- KEYS: stream, jobs hash, result key prefix (same hash tag); ARGV: (job id, body) pairs
-- One call for a batch: far cheaper per job than one XADD command each. A job id that is
-- still queued, delayed or running is skipped, so a producer's retry after a lost reply
-- does not enqueue it twice. A job id whose result is still stored is skipped too: it ran,
-- and running it again is a replay. Returns how many were added.
local stream, jobs, results = KEYS[1], KEYS[2], KEYS[3]
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call("EXISTS", results .. ARGV[i]) == 1 then
    -- finished, result still stored: the existing job stands
  elseif redis.call("HSETNX", jobs, ARGV[i], "q") == 1 then
    redis.call("XADD", stream, "*", "id", ARGV[i], "b", ARGV[i + 1])
    added = added + 1
  end
end
return added
