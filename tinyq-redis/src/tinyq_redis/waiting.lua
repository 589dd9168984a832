-- Included (see _scripts.Lua) by the scripts that skip a job id still waiting; expects the
-- locals `stream` and `delayed` of the including script.
-- A mark is trusted only while its entry (or delayed job) exists: a stream deleted or trimmed
-- by hand must not block its job ids forever. Marks: an entry id, or "d" (delayed); "q" (an
-- older version's mark) names no entry, so it holds while the stream has entries.
local function waiting(id, mark)
  if not mark then
    return false
  elseif mark == "d" then
    return redis.call("ZSCORE", delayed, id) ~= false
  elseif string.find(mark, "^%d+%-%d+$") then
    return redis.call("XRANGE", stream, mark, mark)[1] ~= nil
  end
  return redis.call("XLEN", stream) > 0
end
