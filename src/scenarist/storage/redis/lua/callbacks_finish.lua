-- callbacks_finish.lua: a callback was delivered (drop it from the outbox) or must be
-- tried again at retry_at (finish_callback).
-- Rows of the lifecycle table (core/transitions.py RULES): none (callback outbox).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  zset    callback outbox   P.."ob"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  number  retry_at, optional ("" = delivered)
-- Returns 1 when the outbox held the scenario, else 0.
check_key(KEYS[2], K_OUTBOX)
local retry_s = opt(ARGV[6])
if retry_s then return redis.call('ZADD', KEYS[2], 'XX', 'CH', retry_s, ARGV[5]) end
return redis.call('ZREM', KEYS[2], ARGV[5])
