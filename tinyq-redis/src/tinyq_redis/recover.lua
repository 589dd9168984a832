-- Re-add entries whose lease expired (idle in the pending list longer than the visibility
-- timeout) to the end of their stream, carrying their delivery count; ack and delete the old
-- entry. Atomic, so a renewal cannot race it and no entry is recovered twice.
-- One call reads at most ARGV[4] pending entries from ARGV[3] (XPENDING with IDLE would walk
-- the whole pending list to find expired ones) and recovers at most ARGV[5] of them: the
-- caller goes on from the returned cursor.
-- The count is kept in the recovered hash (new entry id -> deliveries before it), which only
-- this script writes: the entry's own "a" field repeats it as a hint for the reader, but an
-- entry anyone can XADD cannot be believed (a forged "a" would fake a crash loop).
-- KEYS: stream, jobs hash, recovered hash
-- ARGV: group, min idle ms, start ("-" or "(<entry id>"), max read, max recovered
-- Returns {entries recovered, "(<last entry read>" or "" when the list is done}.
local stream, jobs, counts, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local min_idle, limit, most = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local pending = redis.call("XPENDING", stream, group, ARGV[3], "+", limit)
local recovered = 0
for n, p in ipairs(pending) do
  if recovered == most then
    return {recovered, "(" .. pending[n - 1][1]}
  end
  local entry_id, deliveries = p[1], tonumber(p[4])
  if tonumber(p[3]) >= min_idle then
    local entry = redis.call("XRANGE", stream, entry_id, entry_id)
    local f, fields = entry[1] and entry[1][2] or {}, {}
    for i = 1, #f, 2 do
      fields[f[i]] = f[i + 1]
    end
    local id = fields["id"]
    local mark = id and redis.call("HGET", jobs, id)
    if entry[1] then
      local total = (tonumber(redis.call("HGET", counts, entry_id)) or 0) + deliveries
      -- A malformed entry (written by hand) is carried on as it is: the worker dead-letters it.
      local new = redis.call("XADD", stream, "*", "id", id or "", "b", fields["b"] or "",
        "a", total)
      redis.call("HSET", counts, new, total)
      -- The mark follows the job to its new entry, unless it names another entry already.
      if id and (not mark or mark == entry_id or mark == "q") then
        redis.call("HSET", jobs, id, new)
      end
      recovered = recovered + 1
    elseif mark == entry_id then
      redis.call("HDEL", jobs, id) -- trimmed away by hand: nothing left to run
    end
    redis.call("HDEL", counts, entry_id)
    redis.call("XACK", stream, group, entry_id)
    redis.call("XDEL", stream, entry_id)
  end
end
local cursor = ""
if #pending == limit then
  cursor = "(" .. pending[#pending][1]
end
return {recovered, cursor}
