-- rerun.lua: the named tasks and their transitive dependents start a new run
-- (rerun_scenario); mirror of core/rerun.py rerun_plan: processing ones cancelled first
-- (when asked), every run that began kept in the task's history (the last history_limit),
-- the rest of the scenario untouched.
-- Rows of the lifecycle table (core/transitions.py RULES): cancel, rerun_ready, rerun_waiting, override_payload, remove_instance, collapse_group, rewire_parent, rewire_dependent.
-- A group a rerun brings back (mirror of core/rerun_groups.py): its instances go with their
-- history, its kept record (P.."x:"..sid, written by _groups.lua) is pending again, its
-- parents and dependents name it instead of its instances.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2]  hash    scenario hash   P.."s:"..sid
-- KEYS[3]  hash    tasks hash      P.."t:"..sid
-- KEYS[4]  stream  events stream   P.."e:"..sid
-- KEYS[5]  hash    history         P.."h:"..sid: task name -> JSON list of ended runs,
--                  newest first: rn run, a attempt, s status, p payload(json), w worker,
--                  q queued_at, sa started_at, f finished_at, r result_ref,
--                  R result(json), E error
-- KEYS[6]  hash    expanded groups P.."x:"..sid: group name -> its record when it expanded
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
check_key(KEYS[6], expanded_key(sid))
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
local created = tonumber(redis.call('HGET', KEYS[2], 'ca'))
local kept, kept_order = {}, {}
local flat = redis.call('HGETALL', KEYS[6])
for j = 1, #flat, 2 do
  kept[flat[j]] = cjson.decode(flat[j + 1])
  kept_order[#kept_order + 1] = flat[j]
end
table.sort(kept_order, function(x, y) return kept[x].i < kept[y].i end)
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
    if p and not members[pn] and (t.G or not p.op) and LOSSES[p.s] then lost = lost + 1 end
  end
  if t.G or t.j == nil then return lost > 0 end
  return #parents - lost < t.j
end

-- Mirror of core/rerun_groups.py: the expanded group an instance belongs to, the kept
-- groups a rerun of `members` brings back (in plan order), the tasks waiting for them.
local function instance_of(name, t)
  if not (tonumber(t.c) > created) then return nil end
  local group = string.match(name, '^(.*)_%d+$')
  if group and kept[group] then return group end
  return nil
end
local function collapsing(members)
  local back, is_back, grew = {}, {}, true
  while grew do
    grew = false
    for _, name in ipairs(kept_order) do
      if not is_back[name] then
        local g, cond = kept[name], false
        if g.Z then
          cond = is_back[g.Z] or false
        else
          for _, pn in ipairs(g.d) do
            if members[pn] then cond = true end
          end
        end
        if cond then
          back[#back + 1], is_back[name], grew = name, true, true
        end
      end
    end
  end
  table.sort(back, function(x, y) return kept[x].i < kept[y].i end)
  return back, is_back
end
local function dependents_of(groups, is_back)
  local list, seen = {}, {}
  for _, g in ipairs(groups) do
    for _, d in ipairs(kept[g].D) do
      if not is_back[d] and not seen[d] then
        seen[d] = true
        list[#list + 1] = d
      end
    end
  end
  return list
end

-- Passes in plan order until nothing joins (mirror of core/rerun.py _rerun_set).
local members, grew = {}, true
local groups, is_back
while grew do
  grew = false
  groups, is_back = collapsing(members)
  local below_group = {}
  for _, d in ipairs(dependents_of(groups, is_back)) do below_group[d] = true end
  for _, entry in ipairs(tasks) do
    local name, t = entry[1], entry[2]
    if not members[name] then
      local below = below_group[name] or false
      for _, parent in ipairs(t.d) do
        if members[parent] then below = true end
      end
      local of = instance_of(name, t)
      if named[name] or (of and is_back[of]) or (below and not out_of_reach(t, members)) then
        members[name] = true
        grew = true
      end
    end
  end
end
groups, is_back = collapsing(members)
local chosen = {}
for _, entry in ipairs(tasks) do
  if members[entry[1]] then chosen[#chosen + 1] = entry end
end
local instances, gone = {}, {}
for _, g in ipairs(groups) do instances[g] = {} end
for _, entry in ipairs(chosen) do
  local of = instance_of(entry[1], entry[2])
  if of and is_back[of] then
    instances[of][entry[1]] = true
    gone[entry[1]] = true
  end
end

local function names_where(test)
  local list = {}
  for _, entry in ipairs(chosen) do
    if test(entry[1], entry[2]) then list[#list + 1] = entry[1] end
  end
  return list
end
local function instance(t) return tonumber(t.c) > created end
-- An instance reached from a parent outside its group would need the group again.
local function needs_group(name, t)
  if not instance(t) or gone[name] then return false end
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
-- A group coming back, or a task waiting for it again, that a lost parent doomed.
local with_groups = {}
for name in pairs(members) do with_groups[name] = true end
for _, g in ipairs(groups) do with_groups[g] = true end
local doomed = {}
for _, g in ipairs(groups) do
  if out_of_reach(kept[g], with_groups) then doomed[#doomed + 1] = g end
end
for _, d in ipairs(dependents_of(groups, is_back)) do
  if not members[d] then doomed[#doomed + 1] = d end
end
if #doomed > 0 then return {'refused', 'lost_parent', cjson.encode(doomed), status} end

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

-- Row remove_instance: an instance of a group that comes back goes with its history.
for _, entry in ipairs(chosen) do
  local name, t = entry[1], entry[2]
  if gone[name] then
    if t.s == 'queued' then dequeue(sid, name, t) end
    set_tolerated(sid, t, false)
    redis.call('HDEL', KEYS[3], name)
    redis.call('HDEL', KEYS[5], name)
    cache[sid][name] = false
    if dirty[sid] then dirty[sid][name] = nil end
    bump(sid, '#' .. t.s, -1)
    bump(sid, t.v .. '#' .. t.s, -1)
    bump(sid, 'n', -1)
  end
end

local function waiting_for(depends_on)
  local waiting = 0
  for _, pn in ipairs(distinct(depends_on)) do
    local p = by_name[pn]
    if with_groups[pn] or (p and not FINAL[p.s]) then waiting = waiting + 1 end
  end
  return waiting
end

-- Row collapse_group: the kept record is a pending group again.
for _, g in ipairs(groups) do
  local t = kept[g]
  redis.call('HDEL', KEYS[6], g)
  t.s, t.n, t.nc = 'pending', waiting_for(t.d), no_cache or nil
  bump(sid, '#pending', 1)
  bump(sid, t.v .. '#pending', 1)
  bump(sid, 'n', 1)
  bump(sid, 'g', 1)
  add_event(sid, g, 'pending', t.a, now_s)
  save_task(sid, g, t)
end

-- `names` with `group` instead of its instances (mirror of rerun_groups.renamed).
local function renamed(names, group, insts)
  local out, has = {}, false
  for _, n in ipairs(names) do
    if n == group then has = true end
    if not insts[n] then
      out[#out + 1] = n
    elseif not has then
      out[#out + 1] = group
      has = true
    end
  end
  if not has then out[#out + 1] = group end
  return out
end

-- Row rewire_parent: a parent of a group that comes back names the group again.
for _, g in ipairs(groups) do
  for _, pn in ipairs(distinct(kept[g].d)) do
    local p = by_name[pn]
    if p and not is_back[pn] then
      p.D = renamed(p.D, g, instances[g])
      save_task(sid, pn, p)
    end
  end
end

-- Rows rerun_ready / rerun_waiting, rewire_dependent, then override_payload, in plan order.
for _, entry in ipairs(chosen) do
  local name, t = entry[1], entry[2]
  if not gone[name] then
    local depends_on = nil
    for _, g in ipairs(groups) do
      for _, d in ipairs(kept[g].D) do
        if d == name then
          depends_on = renamed(depends_on or t.d, g, instances[g])
          break
        end
      end
    end
    local began = t.a > 0 or FINAL[t.s]
    if began then
      archive(name, t)
      t.rn = (t.rn or 1) + 1
      t.rs = math.min(t.rs or 1, limit) + 1
    end
    if depends_on then t.d, t.j = depends_on, nil end
    local waiting = waiting_for(t.d)
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
end
redis.call('HDEL', KEYS[2], 'cx')
touch(sid)
settle_all(now_s)
local again = {}
for _, entry in ipairs(chosen) do
  if not gone[entry[1]] then again[#again + 1] = {entry[2].i, entry[1]} end
end
for _, g in ipairs(groups) do again[#again + 1] = {kept[g].i, g} end
table.sort(again, function(x, y) return x[1] < y[1] end)
local names = {}
for k, entry in ipairs(again) do names[k] = entry[2] end
return {'ok', cjson.encode(names)}
