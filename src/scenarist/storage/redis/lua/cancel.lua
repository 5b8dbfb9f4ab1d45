-- cancel.lua: every non-final task of a scenario -> cancelled, in plan order
-- (cancel_scenario).
-- Rows of the lifecycle table (core/transitions.py RULES): cancel.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  number  now
-- Derived: ready queues and delayed sets of queued tasks (they leave them), P.."lx" and
--          P.."fl" (processing leases become stale), P.."ix:"..status, P.."ob".
-- Returns {"ok"} | {"unchanged"} (already cancelled) | {"notfound"}
--       | {"conflict", current_status}.
local sid, now_s = ARGV[5], ARGV[6]
check_scenario_keys(sid)
local status = redis.call('HGET', KEYS[2], 'st')
if not status then return {'notfound'} end
if status == 'cancelled' then return {'unchanged'} end
if FINAL[status] then return {'conflict', status} end

for _, entry in ipairs(all_tasks(sid)) do
  local name, t = entry[1], entry[2]
  if not FINAL[t.s] then
    if t.s == 'queued' then dequeue(sid, name, t) end
    if t.s == 'processing' then drop_lease(sid, name, t) end
    t.f, t.k, t.ls, t.av = now_s, nil, nil, nil
    set_status(sid, name, t, 'cancelled', now_s)
    save_task(sid, name, t)
  end
end
redis.call('HSET', KEYS[2], 'cx', '1')
touch(sid)
settle_all(now_s)
return {'ok'}
