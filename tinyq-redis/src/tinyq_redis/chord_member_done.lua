-- A chord member's report (ChordRecords.chord_member_done): add the member's index to the
-- chord's set; the call that added the last one enqueues the callback's messages, as
-- enqueue.lua does, in the same step. A set, not a counter: a call sent twice (a client's
-- re-send after a timeout, a redelivered member) adds nothing the second time.
-- KEYS: record set, stream, jobs hash, delayed zset, result key prefix (one hash tag)
-- ARGV: member, total, record ttl ms, group, then (job id, body) pairs
local record, stream, jobs, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local added = redis.call("SADD", record, ARGV[1])
redis.call("PEXPIRE", record, ARGV[3])
if added == 0 or redis.call("SCARD", record) ~= tonumber(ARGV[2]) then
  return 0
end
if #ARGV > 4 and redis.call("EXISTS", stream) == 0 then
  redis.call("XGROUP", "CREATE", stream, ARGV[4], "0", "MKSTREAM")
end
-- #include waiting.lua
for i = 5, #ARGV, 2 do
  if redis.call("EXISTS", KEYS[5] .. ARGV[i]) == 1 then
    -- finished, result still stored: the existing job stands
  elseif not waiting(ARGV[i], redis.call("HGET", jobs, ARGV[i])) then
    redis.call("HSET", jobs, ARGV[i], redis.call("XADD", stream, "*", "id", ARGV[i], "b",
                                                  ARGV[i + 1]))
  end
end
return 1
