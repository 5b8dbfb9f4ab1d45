-- claim.lua: seed-compatible claim of one specific queued task (PATCH status=processing).
-- Rows of the lifecycle table (core/transitions.py RULES): claim.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  number  lease seconds, optional ("" = the task's timeout)
-- ARGV[8]  string  worker id, optional
-- ARGV[9]  number  now
-- ARGV[10] string  nonce for the lease token
-- Derived: the task's ready queue and delayed set, P.."lx", P.."fl", P.."ix:"..status, P.."ob".
-- Returns {"ok", record, inputs} | {"notfound"} | {"illegal", current_status}
--       | {"full", limit, group}: the task's max_parallel group has that many processing.
local sid, name = ARGV[5], ARGV[6]
local lease_seconds = opt(ARGV[7]) and tonumber(opt(ARGV[7]))
local worker, now_s, nonce = opt(ARGV[8]), ARGV[9], ARGV[10]
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t then return {'notfound'} end
if t.s ~= 'queued' then return {'illegal', t.s} end
if t.mp ~= nil and running_stored(sid, t.pg) >= t.mp then return {'full', t.mp, t.pg} end
dequeue(sid, name, t)
take(sid, name, t, nonce, lease_seconds, worker, now_s, tonumber(now_s))
settle_all(now_s)
return {'ok', encoded_task(sid, name), inputs_json(sid, t)}
