-- rerun.lua: the named tasks and their transitive dependents start a new run
-- (rerun_scenario); mirror of core/rerun.py rerun_plan: processing ones cancelled first
-- (when asked), every run that began kept in the task's history (the last history_limit),
-- the rest of the scenario untouched.
-- Rows of the lifecycle table (core/transitions.py RULES): cancel, rerun_ready, rerun_waiting, override_payload.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- KEYS[5]  hash    history         P.."h:"..sid: task name -> JSON list of ended runs,
--                  newest first: rn run, a attempt, s status, p payload(json), w worker,
--                  q queued_at, sa started_at, f finished_at, r result_ref,
--                  R result(json), E error
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  scenario id
-- ARGV[6]  number  now
-- ARGV[7]  json    the named tasks (list of names)
-- ARGV[8]  json    payload overrides: list of [name, payload read by the caller, payload
--                  to write, its step-cache base digest "cb"]; a payload that changed
--                  since the caller read it is refused
-- ARGV[9]  "0"|"1" cancel_running
-- ARGV[10] "0"|"1" no_cache (set on every task of the rerun)
-- ARGV[11] number  history_limit
-- Derived: ready queues and delayed sets (tasks leave and re-enter them), P.."lx" and
--          P.."fl" (cancelled leases), P.."ix:"..status, P.."ob" (left when the scenario
--          is no longer final); retention is cleared (PERSIST).
-- Returns {"ok", names json} | {"notfound"} | {"unknown", names json} | {"changed"}
--       | {"refused", reason, names json, scenario status}
--         (reason: expanded | lost_parent | processing, as core/rerun.py names them).
local sid, now_s = ARGV[5], ARGV[6]
local now = tonumber(now_s)
check_scenario_keys(sid)
check_key(KEYS[5], history_key(sid))
local status = redis.call('HGET', KEYS[2], 'st')
if not status then return {'notfound'} end
local cancel_running, no_cache = ARGV[9] == '1', ARGV[10] == '1'
local limit = tonumber(ARGV[11])

local tasks = all_tasks(sid)
local by_name = {}
for _, entry in ipairs(tasks) do by_name[entry[1]] = entry[2] end
local named, unknown = {}, {}
for _, name in ipairs(cjson.decode(ARGV[7])) do
  if not by_name[name] and not named[name] then unknown[#unknown + 1] = name end
  named[name] = true
end
if #unknown > 0 then return {'unknown', cjson.encode(unknown)} end
local payloads = {}
for _, override in ipairs(cjson.decode(ARGV[8])) do
  if by_name[override[1]].p ~= override[2] then return {'changed'} end
  payloads[override[1]] = {override[3], override[4]}
end

-- Mirror of core/rerun.py _out_of_reach: the parents that stay as they are.
local function out_of_reach(t, members)
  local parents, lost = distinct(t.d), 0
  for _, pn in ipairs(parents) do
    local p = by_name[pn]
    if p and not members[pn] and not p.op and LOSSES[p.s] then lost = lost + 1 end
  end
  if t.j == nil then return lost > 0 end
  return #parents - lost < t.j
end

-- Passes in plan order until nothing joins (mirror of core/rerun.py _rerun_set).
local members, grew = {}, true
while grew do
  grew = false
  for _, entry in ipairs(tasks) do
    local name, t = entry[1], entry[2]
    if not members[name] then
      local below = false
      for _, parent in ipairs(t.d) do
        if members[parent] then below = true end
      end
      if named[name] or (below and not out_of_reach(t, members)) then
        members[name] = true
        grew = true
      end
    end
  end
end
local chosen = {}
for _, entry in ipairs(tasks) do
  if members[entry[1]] then chosen[#chosen + 1] = entry end
end

local function names_where(test)
  local list = {}
  for _, entry in ipairs(chosen) do
    if test(entry[1], entry[2]) then list[#list + 1] = entry[1] end
  end
  return list
end
local created = tonumber(redis.call('HGET', KEYS[2], 'ca'))
local function instance(t) return tonumber(t.c) > created end
-- An instance reached from a parent outside its group would need the group again.
local function needs_group(_, t)
  if not instance(t) then return false end
  for _, pn in ipairs(t.d) do
    if members[pn] and by_name[pn] and not instance(by_name[pn]) then return true end
  end
  return false
end
local refusals = {
  {'expanded', needs_group},
  {'lost_parent', function(name, t) return named[name] and out_of_reach(t, members) end},
  {'processing', function(_, t) return t.s == 'processing' and not cancel_running end},
}
for _, refusal in ipairs(refusals) do
  local found = names_where(refusal[2])
  if #found > 0 then return {'refused', refusal[1], cjson.encode(found), status} end
end

-- Row cancel for the processing ones: their late completions find a stale token.
for _, entry in ipairs(chosen) do
  local name, t = entry[1], entry[2]
  if t.s == 'processing' then
    drop_lease(sid, name, t)
    t.f, t.k, t.ls, t.av = now_s, nil, nil, nil
    set_status(sid, name, t, 'cancelled', now_s)
  end
end

local function archive(name, t)
  local raw = redis.call('HGET', KEYS[5], name)
  local runs = raw and cjson.decode(raw) or {}
  local kept = {{rn = t.rn or 1, a = t.a, s = t.s, p = t.p, w = t.w, q = t.q, sa = t.sa,
    f = t.f, r = t.r, R = t.R, E = t.E}}
  for i = 1, math.min(#runs, limit - 1) do kept[#kept + 1] = runs[i] end
  redis.call('HSET', KEYS[5], name, cjson.encode(kept))
end

-- Rows rerun_ready / rerun_waiting, then override_payload, in plan order.
for _, entry in ipairs(chosen) do
  local name, t = entry[1], entry[2]
  local began = t.a > 0 or FINAL[t.s]
  if began then
    archive(name, t)
    t.rn = (t.rn or 1) + 1
    t.rs = math.min(t.rs or 1, limit) + 1
  end
  local waiting = 0
  for _, pn in ipairs(distinct(t.d)) do
    local p = by_name[pn]
    if members[pn] or (p and not FINAL[p.s]) then waiting = waiting + 1 end
  end
  if t.s == 'queued' then dequeue(sid, name, t) end
  t.a, t.n, t.nc = 0, waiting, no_cache or nil
  set_tolerated(sid, t, false)
  t.av, t.sa, t.f, t.k, t.e, t.ls, t.w, t.r, t.R, t.E = nil, nil, nil, nil, nil, nil, nil, nil,
    nil, nil
  -- The step cache's fields are the run's too: the new run is looked up afresh.
  t.ck, t.ch, t.cf, t.rd = nil, nil, nil, nil
  local override = payloads[name]
  if override then
    t.p = override[1]
    if t.cb then t.cb = override[2] end
  end
  if waiting == 0 then
    t.q = now_s
    set_status(sid, name, t, 'queued', now_s)
    enqueue(sid, name, t, now_s, now)
  else
    t.q = nil
    set_status(sid, name, t, 'pending', now_s)
  end
  save_task(sid, name, t)
end
redis.call('HDEL', KEYS[2], 'cx')
touch(sid)
settle_all(now_s)
local names = {}
for i, entry in ipairs(chosen) do names[i] = entry[1] end
return {'ok', cjson.encode(names)}
