-- stats.lua: queue depth of every service of one shard, read in one consistent step.
-- Rows of the lifecycle table (core/transitions.py RULES): none (read only).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  set     services of the shard   P.."sv"
-- KEYS[3]  hash    in-flight counts        P.."fl"
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  now
-- Derived: P.."q:"..svc..":"..prio (and its tenants' queues, P.."tn:"..svc) and
--          P.."d:"..svc of every service (read only).
-- Derived: P.."ps" and the tasks hashes of its scenarios (held tasks, see _lease.lua),
--          P.."kf" (concurrency keys in flight), P.."rb" (token buckets), read only.
-- Returns a flat list per service: name, ready, delayed, in flight, oldest ready score
-- ("" when nothing is ready), held (ready, but their max_parallel group is full), ready
-- tasks not held by a group but by their concurrency key (among the first HELD_SCAN of
-- each queue), bucket tokens and time ("" before the first rate-limited lease). Due
-- delayed tasks count as ready.
check_key(KEYS[2], K_SERVICES)
check_key(KEYS[3], K_INFLIGHT)
local now_s = ARGV[5]
local held_by_service = held_counts(tonumber(now_s))
local out = {}
local key_flight = redis.call('HGETALL', K_KEYS)
local flying = {}
for j = 1, #key_flight, 2 do flying[key_flight[j]] = tonumber(key_flight[j + 1]) end
local any_key = #key_flight > 0

-- Ready entries (ids) of `key` from `lo` to `hi` score whose key is at its limit.
local function held_by_key(key, lo, hi)
  if not any_key then return 0 end
  local count = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, lo, hi, 'LIMIT', 0, HELD_SCAN)) do
    local sid, name = split_id(id)
    local t = sid and load_task(sid, name)
    if t and t.s == 'queued' and t.kk and not held(sid, t) and (flying[t.kk] or 0) >= t.kl then
      count = count + 1
    end
  end
  return count
end
for _, svc in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local ready_count, oldest, by_key = 0, nil, 0
  local tenants = redis.call('SMEMBERS', tenants_key(svc))
  table.insert(tenants, 1, false)  -- the default tenant's queues
  for prio = MIN_PRIORITY, MAX_PRIORITY do
    for _, tn in ipairs(tenants) do
      local q = queue_key(svc, prio, tn or nil)
      ready_count = ready_count + redis.call('ZCARD', q)
      by_key = by_key + held_by_key(q, '-inf', '+inf')
      local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
      if first[2] and (not oldest or tonumber(first[2]) < oldest) then oldest = tonumber(first[2]) end
    end
  end
  local dk = delayed_key(svc)
  local due = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
  local due_count = redis.call('ZCOUNT', dk, '-inf', now_s)
  if due_count > 0 and (not oldest or tonumber(due[2]) < oldest) then oldest = tonumber(due[2]) end
  out[#out + 1] = svc
  out[#out + 1] = ready_count + due_count
  out[#out + 1] = redis.call('ZCOUNT', dk, '(' .. now_s, '+inf')
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], svc) or '0')
  out[#out + 1] = oldest and fmt(oldest) or ''
  out[#out + 1] = held_by_service[svc] or 0
  out[#out + 1] = by_key + held_by_key(dk, '-inf', now_s)
  out[#out + 1] = redis.call('HGET', K_BUCKETS, svc .. '|t') or ''
  out[#out + 1] = redis.call('HGET', K_BUCKETS, svc .. '|a') or ''
end
return out
