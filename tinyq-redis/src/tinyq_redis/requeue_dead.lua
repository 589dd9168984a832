-- Put dead letters back on their queue: all of them, or those whose job id is in ARGV[6..],
-- deleting each one's stored result (the failure): a requeued job is waiting, not failed.
-- With "drop", those dead letters are deleted instead (their failures stay until their TTL).
-- At most ARGV[4] dead letters are read per call, from ARGV[2] to ARGV[3] (the last one when
-- the caller began: a requeued job that dies again is not requeued again by the same call).
-- KEYS: stream, dead stream, jobs hash
-- ARGV: result key prefix, start ("-" or "(<entry id>"), end, max, "all", "some" or "drop",
-- job ids...
-- (The result keys share the queue's hash tag, so they live in the same Cluster slot.)
-- Returns {how many were requeued (or dropped), "(<last entry read>" or "" when done}.
local stream, dead = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[4])
local wanted = nil
local drop = ARGV[5] == "drop"
if ARGV[5] ~= "all" then
  wanted = {}
  for i = 6, #ARGV do
    wanted[ARGV[i]] = true
  end
end
local requeued = 0
local entries = redis.call("XRANGE", dead, ARGV[2], ARGV[3], "COUNT", limit)
for _, entry in ipairs(entries) do
  local f, fields = entry[2], {}
  for i = 1, #f, 2 do
    fields[f[i]] = f[i + 1]
  end
  if drop and wanted[fields["id"]] then
    redis.call("XDEL", dead, entry[1])
    requeued = requeued + 1
  elseif wanted == nil or wanted[fields["id"]] then
    local new = redis.call("XADD", stream, "*", "id", fields["id"], "b", fields["b"])
    -- A message that failed its signature check only claims its id: the real job's mark and
    -- result stay (it is checked again, and dead-lettered again, when delivered).
    if fields["v"] ~= "0" then
      redis.call("HSET", KEYS[3], fields["id"], new)
      redis.call("DEL", ARGV[1] .. fields["id"])
    end
    redis.call("XDEL", dead, entry[1])
    requeued = requeued + 1
  end
end
local cursor = ""
if #entries == limit then
  cursor = "(" .. entries[#entries][1]
end
return {requeued, cursor}
