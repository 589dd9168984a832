-- Put dead letters back on their queue: all of them, or those whose job id is in ARGV[3..],
-- deleting each one's stored result (the failure): a requeued job is waiting, not failed.
-- KEYS: stream, dead stream, jobs hash; ARGV: result key prefix, "all" or "some", job ids...
-- (The result keys share the queue's hash tag, so they live in the same Cluster slot.)
-- Returns how many were requeued.
local stream, dead = KEYS[1], KEYS[2]
local wanted = nil
if ARGV[2] == "some" then
  wanted = {}
  for i = 3, #ARGV do
    wanted[ARGV[i]] = true
  end
end
local requeued = 0
for _, entry in ipairs(redis.call("XRANGE", dead, "-", "+")) do
  local f, fields = entry[2], {}
  for i = 1, #f, 2 do
    fields[f[i]] = f[i + 1]
  end
  if wanted == nil or wanted[fields["id"]] then
    redis.call("XADD", stream, "*", "id", fields["id"], "b", fields["b"])
    -- A message that failed its signature check only claims its id: the real job's mark and
    -- result stay (it is checked again, and dead-lettered again, when delivered).
    if fields["v"] ~= "0" then
      redis.call("HSET", KEYS[3], fields["id"], "q")
      redis.call("DEL", ARGV[1] .. fields["id"])
    end
    redis.call("XDEL", dead, entry[1])
    requeued = requeued + 1
  end
end
return requeued
