-- Re-add entries whose lease expired (idle in the pending list longer than the visibility
-- timeout) to the end of their stream, carrying their delivery count; ack and delete the old
-- entry. Atomic, so a renewal cannot race it and no entry is recovered twice.
-- KEYS: stream; ARGV: group, min idle ms, max entries
-- Returns how many entries were recovered.
local stream, group = KEYS[1], ARGV[1]
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
    local prior = tonumber(fields["a"] or "0") or 0
    -- A malformed entry (written by hand) is carried on as it is: the worker dead-letters it.
    redis.call("XADD", stream, "*", "id", fields["id"] or "", "b", fields["b"] or "",
      "a", prior + deliveries)
    recovered = recovered + 1
  end
  redis.call("XACK", stream, group, entry_id)
  redis.call("XDEL", stream, entry_id)
end
return recovered
