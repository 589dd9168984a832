-- Delete a queue's waiting messages: entries not yet delivered to the group, and delayed ones.
-- Leased entries stay: their workers still ack them.
-- KEYS: stream, delayed zset, payload hash, jobs hash, recovered hash; ARGV: group
-- Returns how many were deleted.
local stream, delayed, payloads, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local last = "0-0"
-- No stream (the server lost its data): XINFO would fail; its delayed jobs still go.
local groups = {}
if redis.call("EXISTS", stream) == 1 then
  groups = redis.call("XINFO", "GROUPS", stream)
end
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do
    info[g[i]] = g[i + 1]
  end
  if info["name"] == ARGV[1] then
    last = info["last-delivered-id"]
  end
end
local ids = {}
for _, entry in ipairs(redis.call("XRANGE", stream, "(" .. last, "+")) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == "id" then
      ids[#ids + 1] = f[i + 1]
    end
  end
  redis.call("XDEL", stream, entry[1])
  redis.call("HDEL", KEYS[5], entry[1])
end
for _, id in ipairs(redis.call("ZRANGE", delayed, 0, -1)) do
  ids[#ids + 1] = id
end
for _, id in ipairs(ids) do
  redis.call("HDEL", jobs, id)
end
redis.call("DEL", delayed, payloads)
return #ids
