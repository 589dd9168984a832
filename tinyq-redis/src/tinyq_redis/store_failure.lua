-- Store a job's failure unless it succeeded already (a job that ran twice keeps its success).
-- A failure is stored as its body twice; see dead_letter.lua. RPUSH first, then LTRIM to the
-- two just pushed: at maxmemory a script is refused only if its first write may grow memory
-- (a DEL first would let the rest through).
-- KEYS: result key; ARGV: ttl ms, body. Returns 1 when stored, 0 when a success was kept.
if redis.call("LLEN", KEYS[1]) == 1 then
  return 0
end
redis.call("RPUSH", KEYS[1], ARGV[2], ARGV[2])
redis.call("LTRIM", KEYS[1], -2, -1)
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[1]))
return 1
