-- fail.lua: processing -> queued after a backoff (retry) or -> failed for good, skipping
-- every dependent whose join the loss puts out of reach (and so on down) and counting it
-- off the others, in the same step.
-- Rows of the lifecycle table (core/transitions.py RULES): requeue, fail, skip, parent_lost, release.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  string  lease token, optional ("" = the seed's PATCH: any current lease)
-- ARGV[8]  integer attempt the caller read; must still be current
-- ARGV[9]  string  error message
-- ARGV[10] number  retry_at, optional ("" = fail for good)
-- ARGV[11] number  now
-- ARGV[12] json    usage the attempt reported, optional ("" = none): {name: number}
-- Derived: the task's ready queue or delayed set, queues of skipped dependents,
--          P.."lx", P.."fl", P.."ix:"..status, P.."ob", P.."us".
-- Returns {"ok", record} | {"notfound"} | {"stale", current_status}
--       | {"illegal", current_status}.
local sid, name, token = ARGV[5], ARGV[6], opt(ARGV[7])
local attempt, err, retry_s, now_s = tonumber(ARGV[8]), ARGV[9], opt(ARGV[10]), ARGV[11]
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t then return {'notfound'} end
if t.s ~= 'processing' then return {token and 'stale' or 'illegal', t.s} end
if (token and t.k ~= token) or t.a ~= attempt then return {'stale', t.s} end
local usage = opt(ARGV[12])
add_usage(sid, t, usage and cjson.decode(usage), tonumber(now_s))
fail_attempt(sid, name, t, err, retry_s, now_s, tonumber(now_s))
settle_all(now_s)
return {'ok', encoded_task(sid, name)}
