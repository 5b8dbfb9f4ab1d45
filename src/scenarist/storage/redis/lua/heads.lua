-- heads.lua: the best ready tasks of some services on one shard, read only, held tasks
-- left out: the cluster lease ranks the shards' candidates with them (shard_lease.py) on
-- a shard with live scenarios that have max_parallel tasks, so a held task at the head
-- of a queue does not win a share for its shard.
-- Rows of the lifecycle table (core/transitions.py RULES): none (read only).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     live scenarios with max_parallel tasks   P.."ps"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  integer wanted: at most this many entries per queue
-- ARGV[6..] string services
-- Derived: the services' ready queues P.."q:"..svc..":"..prio, and the tasks and
--          scenario hashes of their entries (read only).
-- Returns, per service and per priority from 4 down to 0, a flat list member, score, ...
-- of the first `wanted` entries whose task is queued and not held (see held()).
check_key(KEYS[2], P .. 'ps')
local wanted = tonumber(ARGV[5])
local out = {}
for a = 6, #ARGV do
  for prio = MAX_PRIORITY, 0, -1 do
    local key = queue_key(ARGV[a], prio)
    local found, offset = {}, 0
    while #found < 2 * wanted do
      local got = redis.call('ZRANGE', key, offset, offset + wanted - 1, 'WITHSCORES')
      if #got == 0 then break end
      offset = offset + #got / 2
      for j = 1, #got, 2 do
        local sid, name = split_id(got[j])
        local t = sid and load_task(sid, name)
        if #found < 2 * wanted and t and t.s == 'queued' and not held(sid, t) then
          found[#found + 1] = got[j]
          found[#found + 1] = got[j + 1]
        end
      end
    end
    out[#out + 1] = found
  end
end
return out
