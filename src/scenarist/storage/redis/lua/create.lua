-- create.lua: persist new scenarios and every task of each in one step (create_scenarios;
-- one scenario is a batch of one). Every scenario of a call lives on this shard.
-- Roots are looked up in the step cache (make_ready in _lib.lua).
-- Rows of the lifecycle table (core/transitions.py RULES): submit_root, submit_child, cache_hit, cache_miss.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- Per scenario i (from 1), at b = 2 + 4 * (i - 1):
-- KEYS[b]    hash    scenario hash        P.."s:"..sid
-- KEYS[b+1]  hash    tasks hash           P.."t:"..sid
-- KEYS[b+2]  stream  events stream        P.."e:"..sid
-- KEYS[b+3]  string  idempotency key      P.."ik:"..key (any same-slot name when none)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  scenarios in this call, n
-- Then per scenario, at a (ARGV[6] for the first, each next right after the last pair):
-- ARGV[a]    string  scenario id
-- ARGV[a+1]  string  idempotency key, optional ("" = none)
-- ARGV[a+2]  json    scenario hash fields, {field: string}, counters included
-- ARGV[a+3]  number  now
-- ARGV[a+4]  json    services of the scenario, [service, ...]
-- ARGV[a+5]  json    roots: [[name, ARGV index of its record], ...] (absolute indexes;
--                    the index is no longer read: the records are read back as stored)
-- ARGV[a+6]  number  tasks m, then ARGV[a+7 .. a+6+2m] pairs task name, task record (JSON)
-- Derived: P.."ix:all", P.."ix:"..status, P.."sv", P.."ps", ready/delayed queues of the roots,
--          P.."ob" (empty scenarios with a callback are final at once), the step
--          cache's P.."c:"..key (read) and P.."cc".
-- Returns one {"created", sid} or {"exists", existing_sid} per scenario, in order. A
-- scenario whose key an earlier one of the same call took answers "exists" with it.

local function create_one(b, a)
  local sid, ik, now_s = ARGV[a], opt(ARGV[a + 1]), ARGV[a + 3]
  local now = tonumber(now_s)
  local ik_key = KEYS[b + 3]
  check_scenario_keys(sid, b)
  if ik then
    local existing = redis.call('GET', ik_key)
    if existing and redis.call('EXISTS', scenario_key(existing)) == 1 then
      return {'exists', existing}
    end
  end
  if redis.call('EXISTS', KEYS[b]) == 1 then return {'exists', sid} end

  local fields = cjson.decode(ARGV[a + 2])
  local flat = {}
  for f, v in pairs(fields) do
    flat[#flat + 1] = f
    flat[#flat + 1] = v
  end
  if ik then
    redis.call('SET', ik_key, sid)
    flat[#flat + 1] = 'ikk'
    flat[#flat + 1] = ik_key
  end
  -- Every scenario starts pending with its first event; settle_all() moves it on from
  -- there (an empty scenario is final at once), as every other operation does.
  flat[#flat + 1] = 'st'
  flat[#flat + 1] = 'pending'
  redis.call('HSET', KEYS[b], unpack(flat))
  redis.call('ZADD', index_key('all'), 0, fields.ixm)
  redis.call('ZADD', index_key('pending'), 0, fields.ixm)
  add_event(sid, '', 'pending', 0, now_s)

  -- HSET in chunks: unpack() of 10k arguments would overflow the Lua C stack.
  local first, last = a + 7, a + 6 + 2 * tonumber(ARGV[a + 6])
  local chunk = {}
  for j = first, last, 2 do
    chunk[#chunk + 1] = ARGV[j]
    chunk[#chunk + 1] = ARGV[j + 1]
    if #chunk >= 1000 or j + 2 > last then
      redis.call('HSET', KEYS[b + 1], unpack(chunk))
      chunk = {}
    end
  end

  for _, svc in ipairs(cjson.decode(ARGV[a + 4])) do redis.call('SADD', K_SERVICES, svc) end
  if fields.hp then redis.call('SADD', P .. 'ps', sid) end
  local roots = {}
  for _, root in ipairs(cjson.decode(ARGV[a + 5])) do roots[#roots + 1] = root[1] end
  touch(sid)
  make_ready(sid, roots, now_s, now)
  return {'created', sid}
end

local outcomes, a, last_now = {}, 6, nil
for i = 1, tonumber(ARGV[5]) do
  outcomes[i] = create_one(2 + 4 * (i - 1), a)
  last_now = ARGV[a + 3]
  a = a + 7 + 2 * tonumber(ARGV[a + 6])
end
if last_now then settle_all(last_now) end
return outcomes
