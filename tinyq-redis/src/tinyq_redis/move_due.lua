-- Move delayed messages that are due (by the server's clock) to their stream.
-- KEYS: stream, delayed zset, payload hash, jobs hash; ARGV: max messages to move
-- Returns {number moved, ms until the next due message or -1}.
local stream, delayed, payloads, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = redis.call("TIME")
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ids = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local body = redis.call("HGET", payloads, id)
  if body then
    redis.call("HSET", jobs, id, redis.call("XADD", stream, "*", "id", id, "b", body))
  elseif redis.call("HGET", jobs, id) == "d" then
    redis.call("HDEL", jobs, id) -- its body was deleted by hand: nothing left to run
  end
  redis.call("HDEL", payloads, id)
  redis.call("ZREM", delayed, id)
end
local head = redis.call("ZRANGE", delayed, 0, 0, "WITHSCORES")
local wait = -1
if head[2] then
  wait = math.max(0, tonumber(head[2]) - now)
end
return {#ids, wait}
