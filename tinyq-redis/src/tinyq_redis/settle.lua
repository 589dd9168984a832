-- A worker's report for one queue: store results, then acknowledge and delete finished
-- entries. Results come first, so a job is never acknowledged without its result.
-- KEYS: stream, jobs hash, result keys...
-- ARGV: group, result ttl ms, n (entries to ack), n entry ids, n job ids, one body per result key
local stream, jobs, group = KEYS[1], KEYS[2], ARGV[1]
local ttl, n = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 3, #KEYS do
  redis.call("DEL", KEYS[i]) -- a job that ran twice keeps one result, the last
  redis.call("RPUSH", KEYS[i], ARGV[3 + 2 * n + i - 2])
  redis.call("PEXPIRE", KEYS[i], ttl)
end
if n > 0 then
  local entries, ids = {}, {}
  for i = 1, n do
    entries[i] = ARGV[3 + i]
    ids[i] = ARGV[3 + n + i]
  end
  redis.call("XACK", stream, group, unpack(entries))
  redis.call("XDEL", stream, unpack(entries))
  redis.call("HDEL", jobs, unpack(ids))
end
return n
