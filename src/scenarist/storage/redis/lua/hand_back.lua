-- hand_back.lua: undo a lease whose caller is gone (hand_back): processing -> queued as if
-- the lease had never happened, only while the task is processing under exactly the given
-- token. The attempt goes back down, the lease fields are cleared (started_at too when
-- the attempt returns to 0), and the task re-enters its ready queue at its previous
-- queued_at, which is its place in the ready order (a retry's backoff, over by now, is
-- dropped with available_at).
-- Rows of the lifecycle table (core/transitions.py RULES): hand_back.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  string  lease token being handed back
-- ARGV[8]  number  now
-- Derived: the task's ready queue P.."q:"..svc..":"..prio, P.."lx", P.."fl",
--          P.."ix:"..status.
-- Returns {"ok", record} | {"none"} (no such task, or not processing under that token).
local sid, name, token, now_s = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t or t.s ~= 'processing' or t.k ~= token then return {'none'} end
drop_lease(sid, name, t)
t.a = t.a - 1
t.k, t.w, t.av, t.ls = nil, nil, nil, nil
if t.a == 0 then t.sa = nil end
set_status(sid, name, t, 'queued', now_s)
save_task(sid, name, t)
enqueue(sid, name, t, t.q or now_s, tonumber(now_s))
settle_all(now_s)
return {'ok', encoded_task(sid, name)}
