-- Add messages that are due now to a queue, and mark each as queued in the jobs hash.
-- KEYS: stream, jobs hash; ARGV: (job id, body) pairs
-- One call for a batch: far cheaper per job than one XADD command each. A job id that is
-- still queued, delayed or running is skipped, so a producer's retry after a lost reply
-- does not enqueue it twice. Returns how many were added.
local stream, jobs = KEYS[1], KEYS[2]
if redis.call("EXISTS", stream) == 0 then
  -- The group (_keys.GROUP) comes with the stream, while Redis still has memory for it: a
  -- worker can then drain a queue filled up to maxmemory before it started.
  redis.call("XGROUP", "CREATE", stream, "tinyq", "0", "MKSTREAM")
end
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call("HSETNX", jobs, ARGV[i], "q") == 1 then
    redis.call("XADD", stream, "*", "id", ARGV[i], "b", ARGV[i + 1])
    added = added + 1
  end
end
return added
