-- tenant_stats.lua: every tenant's ready and processing tasks on one shard, read in one
-- consistent step (core/tenants.py, decision 79).
-- Rows of the lifecycle table (core/transitions.py RULES): none (read only).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     services of the shard   P.."sv"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  now
-- Derived: each service's ready queues (the default tenant's and those P.."tn:"..svc
--          names), its delayed set and the records of its due entries, P.."tf" (read only).
-- Returns a flat list: tenant, ready (due delayed tasks count as ready), in flight, ...
check_key(KEYS[2], K_SERVICES)
local now_s = ARGV[5]
local ready, flying, names = {}, {}, {}
local function count(tn, field, by)
  if ready[tn] == nil then
    ready[tn], flying[tn] = 0, 0
    names[#names + 1] = tn
  end
  field[tn] = field[tn] + by
end
for _, svc in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local tenants = redis.call('SMEMBERS', tenants_key(svc))
  table.insert(tenants, 1, false)  -- the default tenant's queues
  for _, tn in ipairs(tenants) do
    local n = 0
    for prio = MIN_PRIORITY, MAX_PRIORITY do n = n + redis.call('ZCARD', queue_key(svc, prio, tn or nil)) end
    if n > 0 then count(tn or 'default', ready, n) end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed_key(svc), '-inf', now_s)) do
    local sid, name = split_id(id)
    local t = sid and load_task(sid, name)
    if t and t.s == 'queued' then count(t.tn or 'default', ready, 1) end
  end
end
local counted = redis.call('HGETALL', K_TENANT_FLIGHT)
for j = 1, #counted, 2 do count(counted[j], flying, tonumber(counted[j + 1])) end
local out = {}
for _, tn in ipairs(names) do
  out[#out + 1] = tn
  out[#out + 1] = ready[tn]
  out[#out + 1] = flying[tn]
end
return out
