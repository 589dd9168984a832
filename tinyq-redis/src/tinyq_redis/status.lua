-- Where a job stands in its queue: "scheduled", "started" (leased), "queued" or "unknown".
-- "started" is found in the pending list (bounded scan), so reserving costs no extra write.
-- KEYS: stream, jobs hash; ARGV: group, job id
local state = redis.call("HGET", KEYS[2], ARGV[2])
if not state then
  return "unknown"
end
if state == "d" then
  return "scheduled"
end
for _, p in ipairs(redis.call("XPENDING", KEYS[1], ARGV[1], "-", "+", 10000)) do
  local entry = redis.call("XRANGE", KEYS[1], p[1], p[1])
  if entry[1] then
    local f = entry[1][2]
    for i = 1, #f, 2 do
      if f[i] == "id" and f[i + 1] == ARGV[2] then
        return "started"
      end
    end
  end
end
return "queued"
