-- Store a job's failure unless it succeeded already (a job that ran twice keeps its success).
-- A failure is stored as its body twice; see dead_letter.lua.
-- KEYS: result key; ARGV: ttl ms, body. Returns 1 when stored, 0 when a success was kept.
if redis.call("LLEN", KEYS[1]) == 1 then
  return 0
end
redis.call("DEL", KEYS[1])
redis.call("RPUSH", KEYS[1], ARGV[2], ARGV[2])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[1]))
return 1
