-- heartbeat.lua: extend the lease of a processing task held under the given token;
-- without lease seconds, by the length last asked for.
-- Rows of the lifecycle table (core/transitions.py RULES): heartbeat.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid (declared for routing; not written)
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid (declared for routing; not written)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  string  lease token
-- ARGV[8]  number  lease seconds, optional ("" = the length last asked for)
-- ARGV[9]  number  now
-- Derived: P.."lx" (new expiry score).
-- Returns {"ok", record} | {"notfound"} | {"stale", current_status}.
local sid, name, token = ARGV[5], ARGV[6], ARGV[7]
local lease_seconds = opt(ARGV[8]) and tonumber(opt(ARGV[8]))
local now = tonumber(ARGV[9])
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t then return {'notfound'} end
if t.s ~= 'processing' or t.k ~= token then return {'stale', t.s} end
local seconds = lease_seconds or tonumber(t.ls or t.o)
t.e = fmt(now + seconds)
t.ls = fmt(seconds)
redis.call('ZADD', K_EXPIRY, t.e, sid .. ':' .. name)
save_task(sid, name, t)
flush_tasks()
return {'ok', cjson.encode(t)}
