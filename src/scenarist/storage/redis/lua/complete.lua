-- complete.lua: processing -> success for a batch of tasks of one shard, each releasing
-- every dependent whose parents have now all succeeded in the same step (a fan-in is
-- released exactly once: each record keeps "n", its count of parents not yet succeeded).
-- Items are applied in order, each as if alone (a repeat of an earlier item reads as a
-- duplicate, a stale token fails only its own item); the changes are settled once.
-- A for_each group the completion releases expands in the same step (see _groups.lua):
-- after every count-off of the item, its record becomes its instances and its
-- dependents wait for them. A completion of a cached task writes its cache entry; the
-- other dependents it releases are looked up in the cache after the expansions
-- (make_ready in _lib.lua), as core's complete_steps and ready_changes order them.
-- Rows of the lifecycle table (core/transitions.py RULES): complete, parent_succeeded, release, expand_group, instance_ready, instance_waiting, rewire_parent, rewire_dependent, cache_hit, cache_miss.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2..] three keys per scenario, in ARGV order: its scenario hash P.."s:"..sid,
--          tasks hash P.."t:"..sid and events stream P.."e:"..sid
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  now
-- ARGV[6]  integer S: how many scenarios the items belong to
-- ARGV[7..] string the S scenario ids, then the items as ONE json array (one argument
--          instead of five per item: Redis clients pay per argument), each item
--          [scenario number (1..S), task name, lease token (optional, "" = the seed's
--          PATCH: any current lease), result_ref (optional), result (optional: json text
--          in a string, stored verbatim, never decoded here), usage (optional: an object
--          of name -> number, added by add_usage; null: none), result digest
--          (core.step_cache.result_digest of result_ref and result), payloads
--          (optional: group name -> [instance payload as JSON text, ...])]
-- Derived: ready queues of released dependents, P.."lx", P.."fl", P.."ix:"..status, P.."ob",
--          P.."us", the step cache's P.."c:"..key, P.."ci" and P.."cc".
-- Returns one reply per item, in order: {"ok", record, released_id...} | {"dup", record}
--       | {"notfound"} | {"stale", current_status} | {"illegal", current_status}
--       | {"expand", group}: the item releases a group it has no payloads for; nothing
--       of that item changed.
-- Records are read after the whole batch; a later item never changes an earlier item's
-- task (it can only queue pending dependents), so each is the state its item left.

-- One item: 'ok' and the released task ids, 'dup' (a repeat with the token that completed
-- the task), 'expand' and the group it lacks instances for, or 'notfound' | 'stale' |
-- 'illegal' and the task's current status.
local function complete_task(sid, name, token, ref, result, usage, digest, payloads, now_s, now)
  local t = load_task(sid, name)
  if not t then return 'notfound' end
  if token and t.s == 'success' and t.k == token then return 'dup' end
  if t.s ~= 'processing' then return token and 'stale' or 'illegal', t.s end
  if token and t.k ~= token then return 'stale', t.s end
  local missing = missing_instances(sid, t, payloads)
  if missing then return 'expand', missing end
  drop_lease(sid, name, t)
  add_usage(sid, t, usage, now)
  t.r, t.R, t.rd, t.f, t.E, t.ls = ref, result, digest, now_s, nil, nil
  set_status(sid, name, t, 'success', now_s)
  save_task(sid, name, t)
  write_cache_entry(sid, name, t, now)
  local groups = {}
  local names = release_dependents(sid, t, now_s, {}, groups)
  local released = {}
  for i, child in ipairs(names) do released[i] = sid .. ':' .. child end
  expand_released(sid, groups, payloads, released, now_s, now)
  make_ready(sid, names, now_s, now)
  return 'ok', released
end

local now_s = ARGV[5]
local now = tonumber(now_s)
local scenario_count = tonumber(ARGV[6])
local sids = {}
for s = 1, scenario_count do
  local sid = ARGV[6 + s]
  local base = 2 + (s - 1) * 3
  check_key(KEYS[base], scenario_key(sid))
  check_key(KEYS[base + 1], tasks_key(sid))
  check_key(KEYS[base + 2], events_key(sid))
  sids[s] = sid
end

local replies, finished = {}, {}
for _, item in ipairs(cjson.decode(ARGV[7 + scenario_count])) do
  local sid, name = sids[item[1]], item[2]
  local code, detail = complete_task(
    sid, name, opt(item[3]), opt(item[4]), opt(item[5]), item[6], item[7], item[8] or {},
    now_s, now)
  local reply = {code, detail}
  if code == 'ok' then
    reply = {code, false}
    for _, id in ipairs(detail) do reply[#reply + 1] = id end
  end
  if code == 'ok' or code == 'dup' then finished[#finished + 1] = {reply, sid, name} end
  replies[#replies + 1] = reply
end
settle_all(now_s)
for _, f in ipairs(finished) do f[1][2] = encoded_task(f[2], f[3]) end
return replies
