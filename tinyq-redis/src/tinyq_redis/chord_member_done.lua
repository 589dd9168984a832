-- A chord member's report (ChordRecords.chord_member_done): store the member's results, add
-- its index to the chord's set; the call that added the last one enqueues the callback's
-- messages, as enqueue.lua does, in the same step. A set, not a counter: a call sent twice (a
-- client's re-send after a timeout, a redelivered member) adds nothing the second time.
-- KEYS: record set, stream, jobs hash, delayed zset, result key prefix (one hash tag)
-- ARGV: member, total, record ttl ms, group, ask ("1": a report without the callback's
-- messages that would complete the record changes nothing and returns -1, so that the caller
-- builds them and calls again), n results, n (job id, body) result pairs, then (job id, body)
-- message pairs
local record, stream, jobs, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local nres = tonumber(ARGV[6])
for i = 7, 6 + 2 * nres, 2 do
  -- as settle.lua stores a result: the callback reads it, so before the record changes
  local key = KEYS[5] .. ARGV[i]
  redis.call("RPUSH", key, ARGV[i + 1])
  redis.call("LTRIM", key, -1, -1)
  redis.call("PEXPIRE", key, ARGV[3])
end
local first = 7 + 2 * nres
if ARGV[5] == "1" and redis.call("SISMEMBER", record, ARGV[1]) == 0
    and redis.call("SCARD", record) == tonumber(ARGV[2]) - 1 then
  return -1
end
local added = redis.call("SADD", record, ARGV[1])
redis.call("PEXPIRE", record, ARGV[3])
if added == 0 or redis.call("SCARD", record) ~= tonumber(ARGV[2]) then
  return 0
end
if #ARGV >= first and redis.call("EXISTS", stream) == 0 then
  redis.call("XGROUP", "CREATE", stream, ARGV[4], "0", "MKSTREAM")
end
-- #include waiting.lua
for i = first, #ARGV, 2 do
  if redis.call("EXISTS", KEYS[5] .. ARGV[i]) == 1 then
    -- finished, result still stored: the existing job stands
  elseif not waiting(ARGV[i], redis.call("HGET", jobs, ARGV[i])) then
    redis.call("HSET", jobs, ARGV[i], redis.call("XADD", stream, "*", "id", ARGV[i], "b",
                                                  ARGV[i + 1]))
  end
end
return 1
