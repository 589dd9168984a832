-- Add messages that are due now to a queue, and mark each as queued in the jobs hash.
-- KEYS: stream, jobs hash; ARGV: (job id, body) pairs
-- One call for a whole batch: far cheaper per job than one XADD command each.
local stream, jobs = KEYS[1], KEYS[2]
for i = 1, #ARGV, 2 do
  redis.call("XADD", stream, "*", "id", ARGV[i], "b", ARGV[i + 1])
  redis.call("HSET", jobs, ARGV[i], "q")
end
return #ARGV / 2
