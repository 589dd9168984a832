-- Record a schedule's tick and, when given, enqueue its job, in one step
-- (ScheduleRecords.claim_tick): of all the schedulers racing for a tick, one records it.
-- KEYS: stream, jobs hash, delayed zset, result key prefix (enqueue.lua's, in its order), the
-- queue's ticks hash (schedule name -> last tick in ms); ARGV: schedule, tick in ms, and
-- optionally the job's id and body.
-- Returns -1 when the recorded tick is as late or later (nothing changed), else what
-- enqueue.lua returns (0 with no job, or a job id present already; 1 when added).
local recorded = tonumber(redis.call("HGET", KEYS[5], ARGV[1]))
if recorded and recorded >= tonumber(ARGV[2]) then
  return -1
end
-- The first write: refused at maxmemory, it leaves nothing behind.
redis.call("HSET", KEYS[5], ARGV[1], ARGV[2])
if #ARGV < 4 then
  return 0
end
-- enqueue.lua follows, as one call with one job: it reads KEYS and ARGV, so they are
-- shadowed by its own.
local KEYS = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local ARGV = {ARGV[3], ARGV[4]}
-- #include enqueue.lua
