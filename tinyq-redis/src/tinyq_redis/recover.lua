-- Re-add entries whose lease expired (idle in the pending list longer than the visibility
-- timeout) to the end of their stream, carrying their delivery count; ack and delete the old
-- entry. Atomic, so a renewal cannot race it and no entry is recovered twice.
-- The count is kept in the recovered hash (new entry id -> deliveries before it), which only
-- this script writes: the entry's own "a" field repeats it as a hint for the reader, but an
-- entry anyone can XADD cannot be believed (a forged "a" would fake a crash loop).
-- KEYS: stream, recovered hash; ARGV: group, min idle ms, max entries
-- Returns how many entries were recovered.
local stream, counts, group = KEYS[1], KEYS[2], ARGV[1]
local pending = redis.call("XPENDING", stream, group, "IDLE", tonumber(ARGV[2]), "-", "+",
  tonumber(ARGV[3]))
local recovered = 0
for _, p in ipairs(pending) do
  local entry_id, deliveries = p[1], tonumber(p[4])
  local entry = redis.call("XRANGE", stream, entry_id, entry_id)
  if entry[1] then
    local f, fields = entry[1][2], {}
    for i = 1, #f, 2 do
      fields[f[i]] = f[i + 1]
    end
    local total = (tonumber(redis.call("HGET", counts, entry_id)) or 0) + deliveries
    -- A malformed entry (written by hand) is carried on as it is: the worker dead-letters it.
    local new_id = redis.call("XADD", stream, "*", "id", fields["id"] or "", "b",
      fields["b"] or "", "a", total)
    redis.call("HSET", counts, new_id, total)
    recovered = recovered + 1
  end
  redis.call("HDEL", counts, entry_id)
  redis.call("XACK", stream, group, entry_id)
  redis.call("XDEL", stream, entry_id)
end
return recovered
