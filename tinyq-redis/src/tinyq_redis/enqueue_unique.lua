-- A unique job (UniqueLocks.enqueue_unique): when its lock is held, return the holder's job
-- id and add nothing; else take the lock and add the message as schedule.lua adds one (now,
-- or after a delay) and enqueue.lua skips one (still waiting, or its result still stored).
-- KEYS: stream, delayed zset, payload hash, wake list, jobs hash, result key prefix, lock
-- (all under the queue's hash tag: one Cluster slot)
-- ARGV: job id, delay ms (0: due now), body, lock ttl ms, group
-- The lock's value: "w:<id>", held while that job's message is waiting, delayed or leased
-- (checked here, so a crash, purge or dead letter never leaves it stale); "k:<id>", kept
-- after the job finished until the key expires (release_unique.lua).
local stream, delayed, payloads, wake, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local lock = KEYS[7]
local id, delay, body = ARGV[1], tonumber(ARGV[2]), ARGV[3]
-- #include waiting.lua
local held = redis.call("GET", lock)
if held then
  local owner = string.sub(held, 3)
  if string.sub(held, 1, 2) == "k:" or waiting(owner, redis.call("HGET", jobs, owner)) then
    return owner
  end
end
if redis.call("EXISTS", stream) == 0 then
  -- The group comes with the stream, as in enqueue.lua.
  redis.call("XGROUP", "CREATE", stream, ARGV[5], "0", "MKSTREAM")
end
if waiting(id, redis.call("HGET", jobs, id)) then
  -- already in: a retried call
elseif redis.call("EXISTS", KEYS[6] .. id) == 1 then
  -- finished, result still stored: running it again would be a replay
elseif delay <= 0 then
  redis.call("HSET", jobs, id, redis.call("XADD", stream, "*", "id", id, "b", body))
else
  local now = redis.call("TIME")
  local due = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + delay
  local head = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
  redis.call("ZADD", delayed, due, id)
  redis.call("HSET", payloads, id, body)
  redis.call("HSET", jobs, id, "d")
  if head[2] == nil or due < tonumber(head[2]) then
    -- Wake one sleeping mover: its schedule did not know this earlier job.
    redis.call("LPUSH", wake, 1)
    redis.call("LTRIM", wake, 0, 0)
  end
end
redis.call("SET", lock, "w:" .. id, "PX", ARGV[4])
return id
