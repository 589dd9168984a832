-- Where a job stands in its queue: "scheduled", "started" (leased), "queued" or "unknown".
-- The job's mark names its stream entry: "started" when that entry is in the pending list,
-- so reserving costs no extra write; "unknown" when the entry (or delayed job) is gone.
-- KEYS: stream, jobs hash, delayed zset; ARGV: group, job id, start, max entries
-- A mark of an older version ("q") names no entry: the pending list is scanned for the job,
-- ARGV[4] entries from ARGV[3] per call; a reply "(<entry id>" asks to call again from there.
local stream, group, id = KEYS[1], ARGV[1], ARGV[2]
local mark = redis.call("HGET", KEYS[2], id)
if not mark then
  return "unknown"
elseif mark == "d" then
  return redis.call("ZSCORE", KEYS[3], id) and "scheduled" or "unknown"
elseif string.find(mark, "^%d+%-%d+$") then
  if not redis.call("XRANGE", stream, mark, mark)[1] then
    return "unknown"
  end
  return redis.call("XPENDING", stream, group, mark, mark, 1)[1] and "started" or "queued"
elseif redis.call("XLEN", stream) == 0 then
  return "unknown"
end
local limit = tonumber(ARGV[4])
local pending = redis.call("XPENDING", stream, group, ARGV[3], "+", limit)
for _, p in ipairs(pending) do
  local entry = redis.call("XRANGE", stream, p[1], p[1])
  if entry[1] then
    local f = entry[1][2]
    for i = 1, #f, 2 do
      if f[i] == "id" and f[i + 1] == id then
        return "started"
      end
    end
  end
end
if #pending == limit then
  return "(" .. pending[#pending][1]
end
return "queued"
