-- complete.lua: processing -> success, and release every dependent whose parents have
-- now all succeeded, in the same step (a fan-in is released exactly once).
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  string  task name
-- ARGV[7]  string  lease token, optional ("" = the seed's PATCH: any current lease)
-- ARGV[8]  string  result_ref, optional
-- ARGV[9]  json    result, optional (stored verbatim, never decoded here)
-- ARGV[10] number  now
-- Derived: ready queues of released dependents, P.."lx", P.."fl", P.."ix:"..status, P.."ob".
-- Each task record keeps "n", its count of parents not yet succeeded; a dependent is
-- released when its count reaches 0 while it is pending.
-- Returns {"ok", record, released_id...} | {"dup", record} | {"notfound"}
--       | {"stale", current_status} | {"illegal", current_status}.
local sid, name, token = ARGV[5], ARGV[6], opt(ARGV[7])
local now_s = ARGV[10]
local now = tonumber(now_s)
check_scenario_keys(sid)
local t = load_task(sid, name)
if not t then return {'notfound'} end
if token and t.s == 'success' and t.k == token then return {'dup', cjson.encode(t)} end
if t.s ~= 'processing' then return {token and 'stale' or 'illegal', t.s} end
if token and t.k ~= token then return {'stale', t.s} end

drop_lease(sid, name, t)
t.r = opt(ARGV[8])
t.R = opt(ARGV[9])
t.f = now_s
set_status(sid, name, t, 'success', now_s)
save_task(sid, name, t)

local out = {'ok', false}
for _, child in ipairs(t.D) do
  local c = load_task(sid, child)
  if c then
    c.n = c.n - 1
    if c.n <= 0 and c.s == 'pending' then
      c.q = now_s
      set_status(sid, child, c, 'queued', now_s)
      out[#out + 1] = sid .. ':' .. child
      enqueue(sid, child, c, now_s, now)
    end
    save_task(sid, child, c)
  end
end
settle_all(now_s)
out[2] = encoded_task(sid, name)
return out
