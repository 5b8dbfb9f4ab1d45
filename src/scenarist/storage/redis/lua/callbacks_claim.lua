-- callbacks_claim.lua: take the due entries of the callback outbox of one shard and make
-- them due again only after a lease (claim_due_callbacks), so one API process of several
-- delivers each.
-- Rows of the lifecycle table (core/transitions.py RULES): none (callback outbox).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  zset    callback outbox   P.."ob" (scenario id -> due time)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  now
-- ARGV[6]  integer limit
-- ARGV[7]  number  lease seconds
-- Returns the claimed scenario ids, oldest due first.
check_key(KEYS[2], K_OUTBOX)
local now = tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local again = fmt(now + tonumber(ARGV[7]))
for _, sid in ipairs(due) do redis.call('ZADD', KEYS[2], 'XX', again, sid) end
return due
