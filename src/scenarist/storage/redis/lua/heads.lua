-- heads.lua: the best ready tasks of some services on one shard, read only, as the lease
-- would take them: the cluster lease ranks the shards' candidates with them
-- (shard_lease.py) on a shard with live scenarios that have max_parallel or affinity
-- tasks. The walk is the lease's (walk_ready in _lease.lua) with the worker's affinity
-- and the room of its max_parallel groups counted on, so a task held back (not this
-- worker's, or by its group's processing tasks, or by an earlier candidate of its group)
-- does not win a share for its shard, and the shard's script, given its share, takes
-- exactly the planned tasks in one call.
-- Rows of the lifecycle table (core/transitions.py RULES): none (read only).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     live scenarios with max_parallel or affinity tasks   P.."ps"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  integer wanted: at most this many entries per service
-- ARGV[6]  string  the leasing worker's labels (JSON object, core/affinity.py)
-- ARGV[7]  number  now (a preferred task's wait)
-- ARGV[8..] string services
-- Derived: the services' ready queues P.."q:"..svc..":"..prio, and the tasks and
--          scenario hashes of their entries (read only).
-- Returns, per service and per priority from 9 down to -5, a flat list member, score, ...
-- of the entries the walk would take.
check_key(KEYS[2], P .. 'ps')
local wanted = tonumber(ARGV[5])
local services, found, lists, list_of, service_of = {}, {}, {}, {}, {}
for a = 8, #ARGV do
  local svc = ARGV[a]
  services[#services + 1] = svc
  found[svc] = 0
  for prio = MAX_PRIORITY, MIN_PRIORITY, -1 do
    local list = {}
    lists[#lists + 1] = list
    list_of[queue_key(svc, prio)] = list
    service_of[queue_key(svc, prio)] = svc
  end
end
local room = new_room({}, tonumber(ARGV[7]), cjson.decode(ARGV[6]))
walk_ready(services, function(s, prio) return queue_key(services[s], prio) end, room,
  function(svc) return wanted - found[svc] end,
  function(key, id, sid, _, t, score)
    if not (t and t.s == 'queued' and gate_admit(room, sid, t)) then return 'passed' end
    local list = list_of[key]
    if not list then return 'passed' end  -- a tenant's queue: Redis Cluster runs none
    list[#list + 1] = id
    list[#list + 1] = score
    local svc = service_of[key]
    found[svc] = found[svc] + 1
    return 'kept'
  end)
return lists
