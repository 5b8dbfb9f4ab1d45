-- cache_clear.lua: delete the step cache entries of one shard (of one service, or all).
-- Rows of the lifecycle table (core/transitions.py RULES): none (no task changes).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  zset    the shard's cache entries   P.."ci" (member key..service)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  service, optional ("" = every service)
-- Derived: P.."c:"..key of each entry.
-- Returns how many entries were deleted (an entry already expired is not counted; the
-- store does not report it: on a cluster most entries are copies, see step_cache.py).
check_key(KEYS[2], P .. 'ci')
local service = opt(ARGV[5])
local removed = 0
local KEY_LENGTH = 40  -- a SHA-1 in hex (core.step_cache.cache_key)
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if service == nil or string.sub(member, KEY_LENGTH + 1) == service then
    removed = removed + redis.call('DEL', cache_entry_key(string.sub(member, 1, KEY_LENGTH)))
    redis.call('ZREM', KEYS[2], member)
  end
end
return removed
