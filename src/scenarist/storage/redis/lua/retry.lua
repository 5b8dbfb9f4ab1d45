-- retry.lua: failed, skipped and cancelled tasks go back (retry_scenario): queued when
-- every parent succeeded, else pending with its count of parents recounted; attempt
-- reset, the run's fields cleared; successes kept.
-- The queued ones are looked up in the step cache (make_ready in _lib.lua).
-- Rows of the lifecycle table (core/transitions.py RULES): retry_ready, retry_waiting, cache_hit, cache_miss.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  number  now
-- Derived: ready queues of requeued tasks, P.."ix:"..status, P.."ob" (left when the
--          scenario is no longer final), the step cache's P.."c:"..key (read) and
--          P.."cc"; retention is cleared (PERSIST).
-- Returns {"ok"} | {"notfound"} | {"conflict", current_status}.
local sid, now_s = ARGV[5], ARGV[6]
local now = tonumber(now_s)
check_scenario_keys(sid)
local status = redis.call('HGET', KEYS[2], 'st')
if not status then return {'notfound'} end
local again = {failed = true, skipped = true, cancelled = true}
local tasks = all_tasks(sid)
local any = false
for _, entry in ipairs(tasks) do
  if again[entry[2].s] then any = true end
end
if not any then return {'conflict', status} end

-- Parents' statuses are read before any change: a retried parent is not a success.
local succeeded = {}
for _, entry in ipairs(tasks) do
  if entry[2].s == 'success' then succeeded[entry[1]] = true end
end
redis.call('HDEL', KEYS[2], 'cx')
local ready_names = {}
for _, entry in ipairs(tasks) do
  local name, t = entry[1], entry[2]
  if again[t.s] then
    local waiting, seen = 0, {}
    for _, parent in ipairs(t.d) do
      if not seen[parent] and not succeeded[parent] then waiting = waiting + 1 end
      seen[parent] = true
    end
    t.a, t.n = 0, waiting
    set_tolerated(sid, t, false)
    t.E, t.k, t.e, t.ls, t.w, t.r, t.R = nil, nil, nil, nil, nil, nil, nil
    t.f, t.sa, t.av, t.q = nil, nil, nil, nil
    t.ck, t.ch, t.cf, t.rd = nil, nil, nil, nil
    if waiting == 0 then
      t.q = now_s
      set_status(sid, name, t, 'queued', now_s)
      save_task(sid, name, t)
      ready_names[#ready_names + 1] = name
    else
      set_status(sid, name, t, 'pending', now_s)
      save_task(sid, name, t)
    end
  end
end
make_ready(sid, ready_names, now_s, now)
touch(sid)
settle_all(now_s)
return {'ok'}
