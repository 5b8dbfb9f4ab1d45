-- expire.lua: the reaper's compare-and-set on an expired lease (expire_lease): like
-- fail.lua with error "lease expired", but only while the task is still processing under
-- the given token AND its lease has run out at `now`.
-- Rows of the lifecycle table (core/transitions.py RULES): requeue, fail, skip, parent_lost, release.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  string  lease token the reaper saw
-- ARGV[8]  number  retry_at, optional ("" = fail for good)
-- ARGV[9]  number  now
-- ARGV[10] string  error message to record
-- Derived: as fail.lua.
-- Returns {"ok", record} | {"none"} (a heartbeat, completion or re-lease won the race).
local sid, name, token = ARGV[5], ARGV[6], ARGV[7]
local retry_s, now_s = opt(ARGV[8]), ARGV[9]
local now = tonumber(now_s)
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t or t.s ~= 'processing' or t.k ~= token or tonumber(t.e) > now then return {'none'} end
fail_attempt(sid, name, t, ARGV[10], retry_s, now_s, now)
settle_all(now_s)
return {'ok', encoded_task(sid, name)}
