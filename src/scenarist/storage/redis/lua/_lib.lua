-- _lib.lua: helpers shared by every scenarist script. scripts.py builds one Redis Function
-- library from this file, the other helper files (_groups.lua, _lease.lua: they use the
-- helpers here) and every operation file (each operation one function: one FCALL, one
-- atomic step), and, for the cluster path, one EVAL script per operation (the helper
-- files, then `begin(KEYS, ARGV)`, then the operation). The helpers exist once in the
-- source tree.
--
-- Conventions every script follows:
--   KEYS[1]  string  shard prefix "{<key_prefix>:<shard>}:". It carries the shard hash tag;
--                    the per-operation keys a script knows up front are passed as KEYS[2..]
--                    and checked against the names derived here. Keys that depend on data
--                    read inside the script (another scenario's hashes in lease, the ready
--                    queue of a released dependent's service, shard-level sets) are derived
--                    from this prefix, so they always share the slot of the declared keys:
--                    Redis Cluster only needs declared keys to route the script to a slot,
--                    and a script may touch any key of that slot.
--   ARGV[1]  number  retention seconds: PEXPIRE on a scenario's keys once it is final
--   ARGV[2]  "0"|"1" publish_lists: also LPUSH every task that becomes ready (seed format)
--   ARGV[3]  string  list prefix for publish_lists: list key = prefix .. service. It is
--                    outside the shard tag, so publish_lists is single-node Redis only
--                    (the store refuses it with more than one shard).
--   ARGV[4]  string  pub/sub channel prefix: "<p>ready:<service>", "<p>events:<scenario>"
--   ARGV[5..]        operation arguments (see each script's header). Optional strings are
--                    sent as "" for nil and "+" .. value otherwise.
--
-- Derived key names (keys.py is the Python side of the same layout; tests check both):
--   P.."s:"..sid            hash    scenario fields and counters ("#<status>",
--                                   "<service>#<status>")
--   P.."t:"..sid            hash    task name -> task record (JSON, fields in codec.py)
--   P.."e:"..sid            stream  scenario events: n=task name ("" = scenario),
--                                   s=status, a=attempt, at=time
--   P.."h:"..sid            hash    task name -> its ended runs (rerun.lua), kept and
--                                   expired with the scenario
--   P.."q:"..svc..":"..prio zset    ready tasks of a service at one priority (-5..9);
--                                   score = available_at or queued_at, member = task id
--                                   (the default tenant's; another tenant's ready queues
--                                   end in "|"..tenant)
--   P.."tn:"..svc           set     tenants other than the default one that have (or had)
--                                   ready queues of the service
--   P.."tf"                 hash    tenant -> tasks in flight (core/tenants.py)
--   P.."fp"                 hash    fair share: svc.."|"..tenant -> pass, svc.."|" ->
--                                   the service's virtual time (core/tenants.py)
--   P.."d:"..svc            zset    delayed tasks (retry backoff); score = available_at
--   P.."lx"                 zset    processing tasks by lease expiry
--   P.."fl"                 hash    service -> tasks in flight
--   P.."kf"                 hash    concurrency key -> tasks in flight (core/gates.py)
--   P.."rb"                 hash    token buckets: svc.."|t" tokens left at svc.."|a"
--   P.."ob"                 zset    callback outbox: scenario id -> due time
--   P.."ix:all", P.."ix:"..status  zset  scenario index, score 0, member "<created>|<id>"
--   P.."sv"                 set     services that have or had tasks
--   P.."ps"                 set     live scenarios with max_parallel or affinity tasks
--                                   (_lease.lua: a lease may pass over their tasks)
--   P.."ik:"..key           string  idempotency key -> scenario id
--   P.."us"                 hash    usage totals: JSON [hour, template, service, name]
--                                   -> sum as exact float text (core/usage.py)
--   P.."c:"..key            string  step cache entry (JSON: v service, f task id, r/R
--                                   result_ref/result, rd result digest, x expiry);
--                                   PX = its lifetime + CACHE_GRACE_MS
--   P.."ci"                 zset    step cache entries of the shard: member key..service,
--                                   score = expiry (for clearing; pruned as it grows)
--   P.."cc"                 hash    step cache lookups: "h:"..service, "m:"..service

-- Per-call values and state are upvalues that begin(keys, argv) (at the end of this file)
-- sets and resets before every operation: loaded as a Redis Function library the helpers
-- below are built once, not on every call (see scripts.py).
local KEYS_, P, RETENTION_MS, PUBLISH_LISTS, LIST_PREFIX, CHANNEL
local K_EXPIRY, K_INFLIGHT, K_OUTBOX, K_SERVICES, K_USAGE, K_KEYS, K_BUCKETS
local K_TENANT_FLIGHT, K_PASSES
-- Queue priorities: a lane's offset plus the level capped at 4 (core/model.py
-- queue_priority): interactive 5..9, normal 0..4 (the seed's), batch -5..-1.
local MAX_PRIORITY, MIN_PRIORITY = 9, -5
local QUEUES = MAX_PRIORITY - MIN_PRIORITY + 1  -- ready queues per service
local LANE_OFFSET = {interactive = 5, batch = -5}
local FINAL = {success = true, failed = true, skipped = true, cancelled = true}

local function fmt(x) return string.format('%.17g', x) end
local function opt(a) if a == nil or a == '' then return nil end return string.sub(a, 2) end

local function scenario_key(sid) return P .. 's:' .. sid end
local function tasks_key(sid) return P .. 't:' .. sid end
local function events_key(sid) return P .. 'e:' .. sid end
-- A tenant's own ready queues (decision 79): the default tenant's (tn nil) are the
-- queues as they were before tenants, another tenant's carry its name after a '|'.
local function queue_key(svc, prio, tn)
  if tn then return P .. 'q:' .. svc .. ':' .. prio .. '|' .. tn end
  return P .. 'q:' .. svc .. ':' .. prio
end
local function tenants_key(svc) return P .. 'tn:' .. svc end
local function delayed_key(svc) return P .. 'd:' .. svc end
local function index_key(status) return P .. 'ix:' .. status end
local function history_key(sid) return P .. 'h:' .. sid end
-- An expanded group's record as it was when it expanded (decision 63): name -> record.
local function expanded_key(sid) return P .. 'x:' .. sid end

-- Declared KEYS must be the names derived here; a mismatch means keys.py and this file
-- drifted apart, and writing anyway would scatter a scenario over unrelated keys.
local function check_key(declared, derived)
  if declared ~= derived then
    error('key layout mismatch: got ' .. tostring(declared) .. ', expected ' .. derived)
  end
end

-- `at`: where the scenario's three keys start in KEYS (2 unless a script takes several).
local function check_scenario_keys(sid, at)
  at = at or 2
  check_key(KEYS_[at], scenario_key(sid))
  check_key(KEYS_[at + 1], tasks_key(sid))
  check_key(KEYS_[at + 2], events_key(sid))
end

local function split_id(id)
  local at = string.find(id, ':', 1, true)
  if not at then return nil, nil end
  return string.sub(id, 1, at - 1), string.sub(id, at + 1)
end

local function priority(t) return (LANE_OFFSET[t.ln] or 0) + math.min(t.l, 4) end

-- Byte-wise string order. Lua's `<` on strings follows the server's collation locale
-- (redis-server calls setlocale), but the ready order's tie-break by task id is byte-wise
-- everywhere else: ZPOPMIN, SQLite, core/ready_order.py.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Unit of work: tasks read by this script are cached (one decoded table per task, so
-- every helper sees the same, current object) and written back once at the end, one HSET
-- per scenario; redis.call round trips dominate a script's cost.
local cache, dirty, dirty_order

local function load_task(sid, name)
  local by_name = cache[sid]
  if not by_name then
    by_name = {}
    cache[sid] = by_name
  end
  local t = by_name[name]
  if t == nil then
    local raw = redis.call('HGET', tasks_key(sid), name)
    t = raw and cjson.decode(raw) or false
    by_name[name] = t
  end
  return t or nil
end

local function save_task(sid, name, t)
  cache[sid][name] = t
  local names = dirty[sid]
  if not names then
    names = {}
    dirty[sid] = names
    dirty_order[#dirty_order + 1] = sid
  end
  names[name] = true
end

-- Encoded records written by flush_tasks(), so replies reuse them: encoded[sid][name].
local encoded

local function encoded_task(sid, name)
  local by_name = encoded[sid]
  return (by_name and by_name[name]) or cjson.encode(cache[sid][name])
end

local function flush_tasks()
  for _, sid in ipairs(dirty_order) do
    local flat = {}
    encoded[sid] = encoded[sid] or {}
    for name in pairs(dirty[sid]) do
      local raw = cjson.encode(cache[sid][name])
      encoded[sid][name] = raw
      flat[#flat + 1] = name
      flat[#flat + 1] = raw
      if #flat >= 1000 then
        redis.call('HSET', tasks_key(sid), unpack(flat))
        flat = {}
      end
    end
    if #flat > 0 then redis.call('HSET', tasks_key(sid), unpack(flat)) end
  end
  dirty, dirty_order = {}, {}
end

-- Scenarios and services touched by this script: settled once at the end.
local touched, touched_order
local ready, ready_order

local function touch(sid)
  if not touched[sid] then
    touched[sid] = true
    touched_order[#touched_order + 1] = sid
  end
end

local function mark_ready(svc)
  if not ready[svc] then
    ready[svc] = true
    ready_order[#ready_order + 1] = svc
  end
end

local function add_event(sid, name, status, attempt, now_s)
  redis.call('XADD', events_key(sid), '*', 'n', name, 's', status, 'a', attempt, 'at', now_s)
  touch(sid)
end

-- Counter changes are summed per scenario and applied by settle() in one HSET.
local deltas, in_flight, started, key_flight, tenant_flight

local function bump(sid, field, by)
  local d = deltas[sid]
  if not d then
    d = {}
    deltas[sid] = d
  end
  d[field] = (d[field] or 0) + by
end

-- Moves the task to `new`, keeping the scenario's counters and event stream in step. An
-- unexpanded group entering or leaving a final status moves the "g" counter (the
-- scenario's total still grows while it is above 0).
-- A task of a max_parallel group moves the group's count of processing tasks
-- ("mp:" .. group), which lease and claim read (see _lease.lua).
local function set_status(sid, name, t, new, now_s)
  if t.G and (FINAL[t.s] or false) ~= (FINAL[new] or false) then
    bump(sid, 'g', FINAL[new] and -1 or 1)
  end
  if t.pg and (t.s == 'processing') ~= (new == 'processing') then
    bump(sid, 'mp:' .. t.pg, new == 'processing' and 1 or -1)
  end
  bump(sid, '#' .. t.s, -1)
  bump(sid, t.v .. '#' .. t.s, -1)
  bump(sid, '#' .. new, 1)
  bump(sid, t.v .. '#' .. new, 1)
  t.s = new
  add_event(sid, name, new, t.a, now_s)
end

-- Upstream outcomes, one per parent in depends_on order (raw JSON, never re-encoded);
-- mirror of core.transitions.parent_input: a parent that did not succeed carries its
-- error and no result.
local function inputs_json(sid, t)
  local parts = {}
  for _, parent in ipairs(t.d) do
    local p = load_task(sid, parent)
    local status = p and p.s or 'pending'
    local head = '{"task":' .. cjson.encode(parent) .. ',"status":' .. cjson.encode(status)
    if status == 'success' then
      local ref = p.r and cjson.encode(p.r) or 'null'
      parts[#parts + 1] = head .. ',"result_ref":' .. ref .. ',"result":' .. (p.R or 'null') .. '}'
    else
      local err = (p and p.E) and cjson.encode(p.E) or 'null'
      parts[#parts + 1] = head .. ',"result_ref":null,"result":null,"error":' .. err .. '}'
    end
  end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function push_list(sid, name, t)
  if not PUBLISH_LISTS then return end
  local msg = '{"id":' .. cjson.encode(sid .. ':' .. name) .. ',"scenario_id":' .. cjson.encode(sid)
    .. ',"name":' .. cjson.encode(name) .. ',"service":' .. cjson.encode(t.v)
    .. ',"payload":' .. t.p .. ',"inputs":' .. inputs_json(sid, t) .. ',"level":' .. t.l .. '}'
  redis.call('LPUSH', LIST_PREFIX .. t.v, msg)
end

-- A queued task goes to its ready queue, or to the delayed set while score > now.
local function enqueue(sid, name, t, score_s, now)
  local id = sid .. ':' .. name
  if tonumber(score_s) > now then
    redis.call('ZADD', delayed_key(t.v), score_s, id)
    return
  end
  if t.tn then redis.call('SADD', tenants_key(t.v), t.tn) end
  redis.call('ZADD', queue_key(t.v, priority(t), t.tn), score_s, id)
  mark_ready(t.v)
  push_list(sid, name, t)
end

-- The step cache: mirror of core/step_cache.py. The record keeps the digests Python
-- computed (cb: service and payload, at submit; rd: result, at every success), so the
-- key is one SHA-1 here over the same string core.step_cache.cache_key builds.
-- Expiry is the entry's own `x` against the step's clock (as core decides it); the
-- Redis TTL, a grace period longer, only reclaims the memory.
local CACHE_GRACE_MS = 60000

local function cache_entry_key(key) return P .. 'c:' .. key end

-- Mirror of core.step_cache.key_of: nil unless the task is cached and every parent
-- succeeded.
local function cache_key(sid, t)
  if not t.ct or not t.cb then return nil end
  local parts = {t.cb}
  for _, parent in ipairs(t.d) do
    local p = load_task(sid, parent)
    if not p or p.s ~= 'success' or not p.rd then return nil end
    parts[#parts + 1] = p.rd
  end
  return redis.sha1hex(table.concat(parts, ':'))
end

-- Mirror of core.step_cache.entry_of: the completion of a task looked up (it has a key)
-- writes the entry of its success in the same call.
local function write_cache_entry(sid, name, t, now)
  if not t.ck then return end
  local expires = now + tonumber(t.ct)
  local entry = {v = t.v, f = sid .. ':' .. name, r = t.r, R = t.R, rd = t.rd, x = fmt(expires)}
  local ttl_ms = math.floor(tonumber(t.ct) * 1000) + CACHE_GRACE_MS
  redis.call('SET', cache_entry_key(t.ck), cjson.encode(entry), 'PX', ttl_ms)
  redis.call('ZADD', P .. 'ci', expires, t.ck .. t.v)
  redis.call('ZREMRANGEBYSCORE', P .. 'ci', '-inf', '(' .. fmt(now - CACHE_GRACE_MS / 1000))
end

-- Rows parent_succeeded and release for the dependents of `t`, which just succeeded:
-- each distinct dependent counts it off, and a pending one at 0 becomes queued (its event
-- written, its queue not yet: see make_ready). The released names are appended to `into`.
-- A for_each group at 0 is not released but appended to `groups` ({name, record}) for
-- expand_released (_groups.lua); a cache hit never releases one (core's ready_changes
-- does not look up a task that feeds a group), so its caller passes no `groups`.
local function release_dependents(sid, t, now_s, into, groups)
  local counted = {}
  for _, child in ipairs(t.D) do
    local c = not counted[child] and load_task(sid, child)
    counted[child] = true
    if c then
      c.n = c.n - 1
      if c.n <= 0 and c.s == 'pending' and c.G then
        assert(groups, 'a cache hit released the group ' .. child)
        groups[#groups + 1] = {child, c}
      elseif c.n <= 0 and c.s == 'pending' then
        c.q = now_s
        set_status(sid, child, c, 'queued', now_s)
        into[#into + 1] = child
      end
      save_task(sid, child, c)
    end
  end
  return into
end

-- Mirror of core.step_cache.ready_changes: `names` just became queued (their status
-- events are written, their queues not yet). Row cache_hit: success from the entry, its
-- dependents released and looked up after the others (first in, first out); row
-- cache_miss: the task keeps its key; every task that is not a hit goes to its queue.
-- A record with `nc` (a rerun forcing a miss) is not looked up.
local function make_ready(sid, names, now_s, now)
  local queue, head = {}, 1
  for i, n in ipairs(names) do queue[i] = n end
  while head <= #queue do
    local name = queue[head]
    head = head + 1
    local t = load_task(sid, name)
    if t and t.s == 'queued' then
      local key, entry = cache_key(sid, t), nil
      if key and not t.nc then
        local raw = redis.call('GET', cache_entry_key(key))
        entry = raw and cjson.decode(raw) or nil
        if entry and tonumber(entry.x) <= now then entry = nil end
      end
      if key then redis.call('HINCRBY', P .. 'cc', (entry and 'h:' or 'm:') .. t.v, 1) end
      if entry then
        t.ck, t.ch, t.cf, t.f = key, true, entry.f, now_s
        t.r, t.R, t.rd, t.av, t.E = entry.r, entry.R, entry.rd, nil, nil
        set_status(sid, name, t, 'success', now_s)
        save_task(sid, name, t)
        release_dependents(sid, t, now_s, queue)
      else
        if key then
          t.ck = key
          save_task(sid, name, t)
        end
        enqueue(sid, name, t, t.av or t.q, now)
      end
    end
  end
end

local function dequeue(sid, name, t)
  local id = sid .. ':' .. name
  redis.call('ZREM', queue_key(t.v, priority(t), t.tn), id)
  redis.call('ZREM', delayed_key(t.v), id)
end

-- Delayed tasks of `svc` whose backoff is over move to their ready queue.
local function promote_due(svc, now_s, limit)
  local dk = delayed_key(svc)
  local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now_s, 'WITHSCORES', 'LIMIT', 0, limit)
  for j = 1, #due, 2 do
    local id = due[j]
    redis.call('ZREM', dk, id)
    local sid, name = split_id(id)
    local t = sid and load_task(sid, name)
    if t and t.s == 'queued' then
      if t.tn then redis.call('SADD', tenants_key(svc), t.tn) end
      redis.call('ZADD', queue_key(svc, priority(t), t.tn), t.av or due[j + 1], id)
      mark_ready(svc)
      push_list(sid, name, t)
    end
  end
  return #due / 2
end

local function drop_lease(sid, name, t)
  redis.call('ZREM', K_EXPIRY, sid .. ':' .. name)
  in_flight[t.v] = (in_flight[t.v] or 0) - 1
  if t.kk then key_flight[t.kk] = (key_flight[t.kk] or 0) - 1 end
  if t.tf then  -- counted by its take (a lease from before tenants was not)
    local tn = t.tn or 'default'
    tenant_flight[tn] = (tenant_flight[tn] or 0) - 1
    t.tf = nil
  end
  t.e = nil
end

local expiry_adds

-- Rows lease / claim: queued -> processing under a new lease token.
local function take(sid, name, t, nonce, lease_seconds, worker, now_s, now)
  local seconds = lease_seconds or tonumber(t.o)
  t.a = t.a + 1
  t.k = nonce .. '.' .. t.a
  t.sa = now_s
  t.e = fmt(now + seconds)
  t.ls = fmt(seconds)
  t.w = worker
  t.av = nil
  set_status(sid, name, t, 'processing', now_s)
  expiry_adds[#expiry_adds + 1] = t.e
  expiry_adds[#expiry_adds + 1] = sid .. ':' .. name
  in_flight[t.v] = (in_flight[t.v] or 0) + 1
  if t.kk then key_flight[t.kk] = (key_flight[t.kk] or 0) + 1 end
  local tn = t.tn or 'default'
  tenant_flight[tn] = (tenant_flight[tn] or 0) + 1
  t.tf = 1
  started[sid] = started[sid] or now_s
  save_task(sid, name, t)
end

-- Row tolerated (a field of rows fail and skip): the scenario's "tol" counter follows it.
local function set_tolerated(sid, t, tolerated)
  local was = t.tl and 1 or 0
  t.tl = tolerated or nil
  local now_tl = t.tl and 1 or 0
  if now_tl ~= was then bump(sid, 'tol', now_tl - was) end
end

local LOSSES = {failed = true, skipped = true, cancelled = true}

local function distinct(names)
  local list, seen = {}, {}
  for _, n in ipairs(names) do
    if not seen[n] then
      seen[n] = true
      list[#list + 1] = n
    end
  end
  return list
end

-- Mirror of core.transition_changes.LossCascade.out_of_reach: can `c` still reach its
-- join with the parents in `lost` (and those final by a loss) lost? An optional parent
-- counts as finished, except for a for_each group (it expands only from results), which
-- any lost parent dooms.
local function out_of_reach(sid, c, lost)
  local parents, count = distinct(c.d), 0
  for _, pn in ipairs(parents) do
    local p = lost[pn] or load_task(sid, pn)
    if p and (c.G or not p.op) and (lost[pn] or LOSSES[p.s]) then count = count + 1 end
  end
  if c.G or c.j == nil then return count > 0 end
  return #parents - count < c.j
end

-- Mirror of core.transition_changes.LossCascade: a lost (failed) task dooms every live
-- dependent whose join can no longer be reached (need nil: any lost parent), and so on
-- down; an optional lost task dooms none but groups. Rows skip (plan order), then
-- parent_lost (and release) for every live dependent of a lost task that survives, in
-- plan order. `doom_root`: the root is live and is skipped with the others (a dependent
-- of an expanded group whose join its instances cannot reach); `released` collects the
-- ids of the tasks the cascade releases.
local function lose(sid, root_name, root, now_s, now, doom_root, released)
  local lost, doomed = {[root_name] = root}, {}
  if doom_root then doomed[1] = {root_name, root} end
  local frontier = {root}
  while #frontier > 0 do
    local parent = table.remove(frontier)
    for _, name in ipairs(distinct(parent.D)) do
      local c = load_task(sid, name)
      if c and not lost[name] and not FINAL[c.s] and (c.G or not parent.op)
        and out_of_reach(sid, c, lost) then
        lost[name] = c
        doomed[#doomed + 1] = {name, c}
        frontier[#frontier + 1] = c
      end
    end
  end
  local function survivors(t)
    local list = {}
    for _, name in ipairs(distinct(t.D)) do
      local c = load_task(sid, name)
      if c and not lost[name] and not FINAL[c.s] then list[#list + 1] = {name, c} end
    end
    return list
  end
  local function tolerated(t)
    if t.op then return true end
    local dependents = distinct(t.D)
    return #dependents > 0 and #survivors(t) == #dependents
  end
  -- Decided before any record moves: every answer reads the step's starting state.
  local root_tolerated = tolerated(root)
  local doomed_tolerated = {}
  for _, entry in ipairs(doomed) do doomed_tolerated[entry[1]] = tolerated(entry[2]) end
  local counted, kept = {}, {}
  for _, t in pairs(lost) do
    for _, entry in ipairs(survivors(t)) do
      if not counted[entry[1]] then kept[#kept + 1] = entry end
      counted[entry[1]] = (counted[entry[1]] or 0) + 1
    end
  end
  if not doom_root then set_tolerated(sid, root, root_tolerated) end
  table.sort(doomed, function(x, y) return x[2].i < y[2].i end)
  for _, entry in ipairs(doomed) do
    local name, c = entry[1], entry[2]
    if c.s == 'queued' then dequeue(sid, name, c) end
    if c.s == 'processing' then drop_lease(sid, name, c) end
    c.f, c.k, c.e, c.ls, c.av = now_s, nil, nil, nil, nil
    set_tolerated(sid, c, doomed_tolerated[name])
    set_status(sid, name, c, 'skipped', now_s)
    save_task(sid, name, c)
  end
  table.sort(kept, function(x, y) return x[2].i < y[2].i end)
  for _, entry in ipairs(kept) do
    local name, c = entry[1], entry[2]
    c.n = c.n - counted[name]
    if c.n <= 0 and c.s == 'pending' then
      c.q = now_s
      set_status(sid, name, c, 'queued', now_s)
      enqueue(sid, name, c, now_s, now)
      if released then released[#released + 1] = sid .. ':' .. name end
    end
    save_task(sid, name, c)
  end
end

-- Rows requeue / fail: processing -> queued (retry_s given: backoff until then) or ->
-- failed for good (+ its loss cascade, see lose()). A failed task keeps the worker of its last attempt.
local function fail_attempt(sid, name, t, err, retry_s, now_s, now)
  drop_lease(sid, name, t)
  t.E = err
  t.k = nil
  t.ls = nil
  if retry_s then
    t.w = nil
    t.av = retry_s
    t.q = now_s
    set_status(sid, name, t, 'queued', now_s)
    save_task(sid, name, t)
    enqueue(sid, name, t, retry_s, now)
  else
    t.f = now_s
    set_status(sid, name, t, 'failed', now_s)
    save_task(sid, name, t)
    lose(sid, name, t, now_s, now)
  end
end

-- Usage reported with a completion or failure (mirror of core/usage.py add_usage and the
-- stores' totals): added to the task's record (t.u, name -> exact float text) and to the
-- shard's hourly totals in the same call. Sums are read, added as doubles and written
-- back with %.17g, as core adds them; HINCRBYFLOAT adds in long double and would drift.
local USAGE_HOUR_SECONDS = 3600

local function add_usage(sid, t, usage, now)
  if type(usage) ~= 'table' or next(usage) == nil then return end
  local template = redis.call('HGET', scenario_key(sid), 'tpl')
  local hour = fmt(math.floor(now / USAGE_HOUR_SECONDS) * USAGE_HOUR_SECONDS)
  if type(t.u) ~= 'table' then t.u = {} end
  for name, amount in pairs(usage) do
    t.u[name] = fmt((tonumber(t.u[name]) or 0) + amount)
    local field = cjson.encode({hour, template, t.v, name})
    local total = redis.call('HGET', K_USAGE, field)
    redis.call('HSET', K_USAGE, field, fmt((tonumber(total) or 0) + amount))
  end
end

local SCENARIO_FIELDS = {'st', 'ixm', 'cb', 'ikk', 'n', 'cx', 'sa', 'tol', 'hp',
  '#success', '#failed', '#skipped', '#cancelled'}

-- Mirror of core.lifecycle.derive_scenario_status.
local function derive_status(cur)
  if cur.cx == '1' then return 'cancelled' end
  local total, succeeded = tonumber(cur.n) or 0, tonumber(cur['#success']) or 0
  local finished = succeeded + (tonumber(cur['#failed']) or 0) + (tonumber(cur['#skipped']) or 0)
    + (tonumber(cur['#cancelled']) or 0)
  if finished < total then return cur.sa and 'running' or 'pending' end
  if succeeded + (tonumber(cur.tol) or 0) == total then return 'success' end
  return 'failed'
end

local function retain(sid, ikk, final)
  local keys = {scenario_key(sid), tasks_key(sid), events_key(sid), history_key(sid),
    expanded_key(sid)}
  if ikk then keys[#keys + 1] = ikk end
  for _, k in ipairs(keys) do
    if final then redis.call('PEXPIRE', k, RETENTION_MS) else redis.call('PERSIST', k) end
  end
end

-- Read the scenario's fields and the counters this script changed in one HMGET.
local function read_scenario(sk, d)
  local names = {unpack(SCENARIO_FIELDS)}
  for field in pairs(d) do names[#names + 1] = field end
  local values = redis.call('HMGET', sk, unpack(names))
  local cur = {}
  for i, field in ipairs(names) do cur[field] = values[i] end
  return cur
end

-- Apply the counter changes, re-derive the scenario's status and write both in one HSET;
-- on a status change move its index entry, append a scenario event, and start (or stop)
-- retention and the callback outbox.
local function settle(sid, now_s)
  local sk = scenario_key(sid)
  local d = deltas[sid] or {}
  local cur = read_scenario(sk, d)
  local update = {}
  for field, by in pairs(d) do
    if by ~= 0 then
      cur[field] = (tonumber(cur[field]) or 0) + by
      update[#update + 1] = field
      update[#update + 1] = cur[field]
    end
  end
  if started[sid] and not cur.sa then
    cur.sa = started[sid]
    update[#update + 1] = 'sa'
    update[#update + 1] = cur.sa
  end
  local old, new = cur.st, derive_status(cur)
  if new ~= old then
    update[#update + 1] = 'st'
    update[#update + 1] = new
    if old then redis.call('ZREM', index_key(old), cur.ixm) end
    redis.call('ZADD', index_key(new), 0, cur.ixm)
    add_event(sid, '', new, 0, now_s)
    -- Scenarios with max_parallel tasks that may hold some back: read by stats.lua.
    if cur.hp then
      redis.call(FINAL[new] and 'SREM' or 'SADD', P .. 'ps', sid)
    end
    if FINAL[new] then
      update[#update + 1] = 'fa'
      update[#update + 1] = now_s
      if cur.cb then redis.call('ZADD', K_OUTBOX, now_s, sid) end
    elseif old and FINAL[old] then
      redis.call('HDEL', sk, 'fa')
      redis.call('ZREM', K_OUTBOX, sid)
    end
  end
  if #update > 0 then redis.call('HSET', sk, unpack(update)) end
  if new ~= old and (FINAL[new] or (old and FINAL[old])) then retain(sid, cur.ikk, FINAL[new]) end
end

local function settle_all(now_s)
  flush_tasks()
  if #expiry_adds > 0 then redis.call('ZADD', K_EXPIRY, unpack(expiry_adds)) end
  for svc, by in pairs(in_flight) do
    if by ~= 0 then redis.call('HINCRBY', K_INFLIGHT, svc, by) end
  end
  for key, by in pairs(key_flight) do
    if by ~= 0 and redis.call('HINCRBY', K_KEYS, key, by) <= 0 then redis.call('HDEL', K_KEYS, key) end
  end
  for tn, by in pairs(tenant_flight) do
    if by ~= 0 and redis.call('HINCRBY', K_TENANT_FLIGHT, tn, by) <= 0 then
      redis.call('HDEL', K_TENANT_FLIGHT, tn)
    end
  end
  for _, sid in ipairs(touched_order) do
    settle(sid, now_s)
    redis.call('PUBLISH', CHANNEL .. 'events:' .. sid, '1')
  end
  for _, svc in ipairs(ready_order) do
    redis.call('PUBLISH', CHANNEL .. 'ready:' .. svc, '1')
  end
end

-- Every task of a scenario as {name, record} in plan order.
local function all_tasks(sid)
  local flat = redis.call('HGETALL', tasks_key(sid))
  local list = {}
  cache[sid] = cache[sid] or {}
  for j = 1, #flat, 2 do
    local t = cache[sid][flat[j]] or cjson.decode(flat[j + 1])
    cache[sid][flat[j]] = t
    list[#list + 1] = {flat[j], t}
  end
  table.sort(list, function(x, y) return x[2].i < y[2].i end)
  return list
end

-- Sets the call's configuration and empties the unit of work; every operation starts here.
local function begin(keys, argv)
  KEYS_, P = keys, keys[1]
  RETENTION_MS = math.floor(tonumber(argv[1]) * 1000)
  PUBLISH_LISTS, LIST_PREFIX, CHANNEL = argv[2] == '1', argv[3], argv[4]
  K_EXPIRY, K_INFLIGHT, K_OUTBOX, K_SERVICES = P .. 'lx', P .. 'fl', P .. 'ob', P .. 'sv'
  K_USAGE, K_KEYS, K_BUCKETS = P .. 'us', P .. 'kf', P .. 'rb'
  K_TENANT_FLIGHT, K_PASSES = P .. 'tf', P .. 'fp'
  cache, dirty, dirty_order, encoded = {}, {}, {}, {}
  touched, touched_order, ready, ready_order = {}, {}, {}, {}
  deltas, in_flight, started, expiry_adds, key_flight = {}, {}, {}, {}, {}
  tenant_flight = {}
end
