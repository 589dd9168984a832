-- A worker's report for one queue: store results, then acknowledge and delete finished
-- entries. Results come first, so a job is never acknowledged without its result.
-- At maxmemory Redis refuses a script only at its first write, and only when that command may
-- grow memory: RPUSH does (DEL, XACK do not), so a report with results is refused whole at
-- the limit, like any write, while one with acks only still runs and frees memory.
-- KEYS: stream, jobs hash, recovered hash (see recover.lua), result keys...
-- ARGV: group, result ttl ms, n (entries to ack), n entry ids, n job ids, one body per result key
-- Returns the entry ids that were no longer pending: their lease was lost (the worker warns).
local stream, jobs, counts, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local ttl, n = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #KEYS do
  redis.call("RPUSH", KEYS[i], ARGV[3 + 2 * n + i - 3])
  redis.call("LTRIM", KEYS[i], -1, -1) -- a job that ran twice keeps one result, the last
  redis.call("PEXPIRE", KEYS[i], ttl)
end
local lost = {}
for i = 1, n do
  local entry, id = ARGV[3 + i], ARGV[3 + n + i]
  -- Entry by entry: an entry no longer pending was recovered (its lease expired) and its job
  -- lives on under a new entry, maybe leased by another worker. This late ack must leave
  -- that job alone, its mark in the jobs hash included (the mark names the job's live entry;
  -- "q" is an older version's mark).
  if redis.call("XACK", stream, group, entry) == 1 then
    redis.call("XDEL", stream, entry)
    redis.call("HDEL", counts, entry)
    local mark = redis.call("HGET", jobs, id)
    if mark == entry or mark == "q" then
      redis.call("HDEL", jobs, id)
    end
  else
    lost[#lost + 1] = entry
  end
end
return lost
