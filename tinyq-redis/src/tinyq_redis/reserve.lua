-- Reserve up to ARGV[3] new entries from several streams in priority order (KEYS order),
-- without blocking: a lower queue is read only when the higher ones run short.
-- KEYS: streams; ARGV: group, consumer, count
-- Returns XREADGROUP's reply shape: {{stream, {{id, {field, value, ...}}, ...}}, ...}.
local wanted = tonumber(ARGV[3])
local out = {}
for _, stream in ipairs(KEYS) do
  if wanted <= 0 then
    break
  end
  local reply = redis.call("XREADGROUP", "GROUP", ARGV[1], ARGV[2], "COUNT", wanted,
    "STREAMS", stream, ">")
  if reply and reply[1] then
    -- Redis answers {{stream, entries}}; fakeredis 2.41 answers {stream, entries}.
    local item = type(reply[1]) == "string" and reply or reply[1]
    out[#out + 1] = item
    wanted = wanted - #item[2]
  end
end
return out
