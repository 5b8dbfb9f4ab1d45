-- create.lua: persist a new scenario and every task in one step (create_scenario).
-- Rows of the lifecycle table (core/transitions.py RULES): submit_root, submit_child.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash        P.."s:"..sid
-- KEYS[3]  hash    tasks hash           P.."t:"..sid
-- KEYS[4]  stream  events stream       P.."e:"..sid
-- KEYS[5]  string  idempotency key      P.."ik:"..key (any same-slot name when ARGV[6] is "")
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  idempotency key, optional ("" = none)
-- ARGV[7]  json    scenario hash fields, {field: string}, counters included
-- ARGV[8]  number  now
-- ARGV[9]  json    services of the scenario, [service, ...]
-- ARGV[10] json    roots: [[name, ARGV index of its record], ...]
-- ARGV[11..] pairs task name, task record (JSON)
-- Derived: P.."ix:all", P.."ix:"..status, P.."sv", ready/delayed queues of the roots,
--          P.."ob" (empty scenarios with a callback are final at once).
-- Returns {"created", sid} or {"exists", existing_sid}.
local sid, now_s = ARGV[5], ARGV[8]
local now = tonumber(now_s)
check_scenario_keys(sid)
if opt(ARGV[6]) then
  local existing = redis.call('GET', KEYS[5])
  if existing and redis.call('EXISTS', scenario_key(existing)) == 1 then
    return {'exists', existing}
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists', sid} end

local fields = cjson.decode(ARGV[7])
local flat = {}
for f, v in pairs(fields) do
  flat[#flat + 1] = f
  flat[#flat + 1] = v
end
if opt(ARGV[6]) then
  redis.call('SET', KEYS[5], sid)
  flat[#flat + 1] = 'ikk'
  flat[#flat + 1] = KEYS[5]
end
-- Every scenario starts pending with its first event; settle_all() moves it on from
-- there (an empty scenario is final at once), as every other operation does.
flat[#flat + 1] = 'st'
flat[#flat + 1] = 'pending'
redis.call('HSET', KEYS[2], unpack(flat))
redis.call('ZADD', index_key('all'), 0, fields.ixm)
redis.call('ZADD', index_key('pending'), 0, fields.ixm)
add_event(sid, '', 'pending', 0, now_s)

-- HSET in chunks: unpack() of 10k arguments would overflow the Lua C stack.
local chunk = {}
for j = 11, #ARGV, 2 do
  chunk[#chunk + 1] = ARGV[j]
  chunk[#chunk + 1] = ARGV[j + 1]
  if #chunk >= 1000 or j + 2 > #ARGV then
    redis.call('HSET', KEYS[3], unpack(chunk))
    chunk = {}
  end
end

for _, svc in ipairs(cjson.decode(ARGV[9])) do redis.call('SADD', K_SERVICES, svc) end
for _, root in ipairs(cjson.decode(ARGV[10])) do
  local t = cjson.decode(ARGV[root[2]])
  enqueue(sid, root[1], t, t.av or t.q, now)
end
touch(sid)
settle_all(now_s)
return {'created', sid}
