-- heads.lua: the best ready tasks of some services on one shard, read only, as the lease
-- would take them: the cluster lease ranks the shards' candidates with them
-- (shard_lease.py, fair_lease.py) on a shard with live scenarios that have max_parallel
-- or affinity tasks, and on every shard when the catalog has tenants. The walk is the
-- lease's (walk_ready in _lease.lua) with the worker's affinity and the room of its
-- max_parallel groups counted on, so a task held back (not this worker's, or by its
-- group's processing tasks, or by an earlier candidate of its group) does not win a
-- share for its shard, and the shard's script, given its share, takes exactly the
-- planned tasks in one call.
-- Rows of the lifecycle table (core/transitions.py RULES): none (read only).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     live scenarios with max_parallel or affinity tasks   P.."ps"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  integer wanted: at most this many entries per service and tenant
-- ARGV[6]  string  the leasing worker's labels (JSON object, core/affinity.py)
-- ARGV[7]  number  now (a preferred task's wait)
-- ARGV[8..] string services
-- Derived: the services' ready queues (the default tenant's and those P.."tn:"..svc
--          names), and the tasks and scenario hashes of their entries (read only).
-- Returns a flat list: service index (1-based), tenant, priority, member, score, ... of
-- the entries the walk would take, each (service, tenant) in ready order.
check_key(KEYS[2], P .. 'ps')
local wanted = tonumber(ARGV[5])
local services, found, out = {}, {}, {}
for a = 8, #ARGV do services[#services + 1] = ARGV[a] end
local room = new_room({}, tonumber(ARGV[7]), cjson.decode(ARGV[6]))
walk_ready(services, function(s, prio) return queue_key(services[s], prio) end, room,
  function(svc, tn) return wanted - (found[svc .. '|' .. tn] or 0) end,
  function(_, id, sid, _, t, score, st)
    if not (t and t.s == 'queued' and gate_admit(room, sid, t)) then return 'passed' end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = st.s, st.name, st.prio, id, score
    local stream = st.svc .. '|' .. st.name
    found[stream] = (found[stream] or 0) + 1
    return 'kept'
  end)
return out
