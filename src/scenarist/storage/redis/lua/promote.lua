-- promote.lua: maintenance tick of one shard: every delayed task whose backoff is over
-- moves to its ready queue (pushed onto its list with publish_lists, waiters woken), so
-- tasks become ready even when no worker calls lease for that service.
-- Rows of the lifecycle table (core/transitions.py RULES): none (the task stays queued).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     services of the shard   P.."sv"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  now
-- ARGV[6]  integer at most this many tasks per service
-- Derived: P.."d:"..svc and P.."q:"..svc..":"..prio of every service; tasks hashes of the
--          promoted tasks' scenarios (read only).
-- Returns how many tasks were promoted.
check_key(KEYS[2], K_SERVICES)
local promoted = 0
for _, svc in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  promoted = promoted + promote_due(svc, ARGV[5], tonumber(ARGV[6]))
end
settle_all(ARGV[5])
return promoted
