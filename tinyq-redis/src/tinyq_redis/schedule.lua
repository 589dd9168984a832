-- Add messages to a queue, each now or after a delay, optionally taking one leased entry off
-- the queue first (nack). One script so that a retry never exists twice or not at all.
-- KEYS: stream, delayed zset (score: due, ms), payload hash (id -> body), wake list, jobs hash,
-- recovered hash (see recover.lua: a nacked entry's count goes with it), result key prefix
-- ARGV: group, entry id to ack ("" for none), then (job id, delay ms, body) triples
-- Without an entry to ack (a producer's enqueue), a job id that is still queued, delayed or
-- running is skipped, so a retry after a lost reply does not add it twice (a mark whose
-- entry or delayed job is gone is not trusted, as in enqueue.lua). Marks: entry id or "d".
-- So is one whose result is still stored (it ran: running it again would be a replay).
-- Returns 0 when the entry to ack was no longer pending (someone else owns it now), else 1.
local stream, delayed, payloads, wake, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if ARGV[2] ~= "" then
  -- Refused at maxmemory like any write (see dead_letter.lua): XACK would let it through.
  redis.call("SETRANGE", stream .. ":oom-check", 0, "")
elseif redis.call("EXISTS", stream) == 0 then
  -- The group comes with the stream, while Redis still has memory for it: a worker can then
  -- drain a queue filled up to maxmemory before it started (XGROUP CREATE is refused there).
  redis.call("XGROUP", "CREATE", stream, ARGV[1], "0", "MKSTREAM")
end
if ARGV[2] ~= "" then
  if redis.call("XACK", stream, ARGV[1], ARGV[2]) == 0 then
    return 0
  end
  redis.call("XDEL", stream, ARGV[2])
  redis.call("HDEL", KEYS[6], ARGV[2])
end
-- #include waiting.lua
local now = redis.call("TIME")
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local head = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
local earliest = head[2] and tonumber(head[2]) or nil
local woke = false
local producing = ARGV[2] == ""
for i = 3, #ARGV, 3 do
  local id, delay, body = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if producing and waiting(id, redis.call("HGET", jobs, id)) then
    -- already queued, delayed or running: a retried enqueue
  elseif producing and redis.call("EXISTS", KEYS[7] .. id) == 1 then
    -- finished, result still stored
  elseif delay <= 0 then
    redis.call("HSET", jobs, id, redis.call("XADD", stream, "*", "id", id, "b", body))
  else
    local due = now + delay
    redis.call("ZADD", delayed, due, id)
    redis.call("HSET", payloads, id, body)
    redis.call("HSET", jobs, id, "d")
    if earliest == nil or due < earliest then
      earliest = due
      woke = true
    end
  end
end
if woke then
  -- Wake one sleeping mover: its schedule did not know this earlier job.
  redis.call("LPUSH", wake, 1)
  redis.call("LTRIM", wake, 0, 0)
end
return 1
