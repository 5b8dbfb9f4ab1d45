-- _lease.lua: the lease's one rule on Redis, the mirror of core/gates.py LeaseRoom
-- (decisions 56, 57, 67, 68): a group's max_parallel, a service's cap and token bucket,
-- a task's concurrency key. Loaded after _lib.lua; lease.lua and lease_many.lua walk the
-- ready queues with lease_ready, claim.lua, heads.lua and stats.lua read held(),
-- gate_reserve.lua and gate_confirm.lua use the bucket helpers in a gate slot.
--
-- A task of a group with max_parallel carries "mp" (the limit) and "pg" (the group: its
-- template task id); the scenario hash counts the group's processing tasks in
-- "mp:" .. pg (set_status keeps it). A task with a concurrency key carries "kk" and its
-- limit "kl"; the shard counts processing tasks per key in P.."kf" and per service in
-- P.."fl" (take and drop_lease move both, with the status).

-- Processing tasks of the group as stored when this call began (counter changes of the
-- call are applied by settle()).
local function running_stored(sid, pg)
  return tonumber(redis.call('HGET', scenario_key(sid), 'mp:' .. pg)) or 0
end

-- Held: its group was at its limit when the call began (it stays queued where it is).
local function held(sid, t)
  return t.mp ~= nil and running_stored(sid, t.pg) >= t.mp
end

-- `gates`: service -> {cap, rate per second, burst, quota}, each optional, as the lease's
-- JSON argument (quota: on Redis Cluster, the room reserved in the service's gate slot
-- instead of the cap and bucket, decision 68). Counts are read once per call, then
-- counted on with the tasks this call admits, as LeaseRoom does.
local function bucket_tokens(svc, rate, burst, now)
  local tokens = redis.call('HGET', K_BUCKETS, svc .. '|t')
  if not tokens then return burst end
  local elapsed = math.max(0, now - tonumber(redis.call('HGET', K_BUCKETS, svc .. '|a')))
  return math.min(burst, tonumber(tokens) + elapsed * rate)
end

-- `labels`: the leasing worker's (core/affinity.py), {} for none.
local function new_room(gates, now, labels)
  return {gates = gates, now = now, labels = labels or {}, taken = {}, tokens = {}, spent = {},
    keys = {}, groups = {}, flying = {}}
end

local function has_labels(labels, wanted)
  for name, value in pairs(wanted) do
    if labels[name] ~= value then return false end
  end
  return true
end

-- Affinity.admits: the worker has every required label, and every preferred one unless
-- the task waited prefer_wait seconds since it became ready ("af" in the task record).
local function affinity_admits(room, t)
  local af = t.af
  if not af then return true end
  if not has_labels(room.labels, af.requires) then return false end
  if has_labels(room.labels, af.prefers) then return true end
  return room.now >= tonumber(t.av or t.q) + af.prefer_wait
end

local function tokens_of(room, svc, g)
  if room.tokens[svc] == nil then room.tokens[svc] = bucket_tokens(svc, g.rate, g.burst, room.now) end
  return room.tokens[svc]
end

-- nil: the service has no gate; else how many more tasks of it this lease may take.
local function service_room(room, svc)
  local g = room.gates[svc]
  if not g then return nil end
  local left
  if g.cap then
    if room.flying[svc] == nil then
      room.flying[svc] = tonumber(redis.call('HGET', K_INFLIGHT, svc) or '0')
    end
    left = math.max(0, g.cap - room.flying[svc] - (room.taken[svc] or 0))
  end
  if g.rate then
    local whole = math.max(0, math.floor(tokens_of(room, svc, g)))
    left = left and math.min(left, whole) or whole
  end
  if g.quota then  -- Redis Cluster: the room reserved in the gate slot (gate_slots.py)
    local still = math.max(0, g.quota - (room.taken[svc] or 0))
    left = left and math.min(left, still) or still
  end
  return left
end

-- LeaseRoom.admit: the worker's affinity (nothing counted when it fails), the service's
-- room, then the group's, then the key's; a task admitted
-- counts against all three for the rest of the walk.
local function gate_admit(room, sid, t)
  if not affinity_admits(room, t) then return false end
  local left = service_room(room, t.v)
  if left and left <= 0 then return false end
  local group = t.mp ~= nil and (sid .. ':' .. t.pg) or nil
  if group then
    if room.groups[group] == nil then room.groups[group] = running_stored(sid, t.pg) end
    if room.groups[group] >= t.mp then return false end
  end
  if t.kk then
    if room.keys[t.kk] == nil then room.keys[t.kk] = tonumber(redis.call('HGET', K_KEYS, t.kk) or '0') end
    if room.keys[t.kk] >= t.kl then return false end
    room.keys[t.kk] = room.keys[t.kk] + 1
  end
  if group then room.groups[group] = room.groups[group] + 1 end
  room.taken[t.v] = (room.taken[t.v] or 0) + 1
  local g = room.gates[t.v]
  if g and g.rate then
    room.tokens[t.v] = tokens_of(room, t.v, g) - 1
    room.spent[t.v] = true
  end
  return true
end

-- Buckets a lease took tokens from are stored, at max(now, their stored time).
local function store_buckets(room)
  for svc in pairs(room.spent) do
    local at = tonumber(redis.call('HGET', K_BUCKETS, svc .. '|a') or '-inf')
    redis.call('HSET', K_BUCKETS, svc .. '|t', fmt(room.tokens[svc]), svc .. '|a', fmt(math.max(room.now, at)))
  end
end

-- The lease's walk over the ready queues of `services` (queue keys from
-- `queue_of(s, prio)`), best first across them: higher priority, then the older score,
-- then task id. `more(svc)` says how many more entries of the service the walk wants (0:
-- it looks at the service no further); a service whose cap, bucket or quota is exhausted
-- is looked at no further either. `visit(id, sid, name, t, score)` says what became of
-- the entry: 'gone' (it left the queue: taken, or a stale entry dropped), 'kept' (it
-- stays, and counts for the caller) or 'passed' (it stays, held back). At most HELD_SCAN
-- entries are passed over per queue, so a long run of held tasks bounds the call.
local HELD_SCAN, PAGE = 1000, 64
local function walk_ready(services, queue_of, room, more, visit)
  for prio = MAX_PRIORITY, MIN_PRIORITY, -1 do
    local cursors = {}
    for s, svc in ipairs(services) do
      -- stays: entries before the cursor still queued; passed: those held back.
      cursors[s] = {key = queue_of(s, prio), svc = svc, buf = {}, pos = 1, stays = 0, passed = 0}
    end
    local function head(c)
      local wanted = more(c.svc)
      if wanted <= 0 or c.passed >= HELD_SCAN then return nil end
      local left = service_room(room, c.svc)
      if left and left <= 0 then return nil end
      if c.pos > #c.buf then
        -- A page is what the walk still wants (more only once tasks were held back), so a
        -- lease of one task reads one entry.
        local size = math.min(PAGE, wanted + c.passed)
        local got = redis.call('ZRANGE', c.key, c.stays, c.stays + size - 1, 'WITHSCORES')
        c.buf, c.pos = {}, 1
        for j = 1, #got, 2 do c.buf[#c.buf + 1] = {tonumber(got[j + 1]), got[j], got[j + 1]} end
        if #c.buf == 0 then return nil end
      end
      return c.buf[c.pos]
    end
    while true do
      local best, at
      for s, c in ipairs(cursors) do
        local h = head(c)
        if h and (not best or h[1] < best[1] or (h[1] == best[1] and bytes_less(h[2], best[2]))) then
          best, at = h, s
        end
      end
      if not best then break end
      local c = cursors[at]
      c.pos = c.pos + 1
      local id = best[2]
      local sid, name = split_id(id)
      local outcome = visit(c.key, id, sid, name, sid and load_task(sid, name), best[3])
      if outcome ~= 'gone' then c.stays = c.stays + 1 end
      if outcome == 'passed' then c.passed = c.passed + 1 end
    end
  end
end

-- The lease: the walk taking what the room admits, up to `max_tasks` (on Redis Cluster,
-- the shard's planned share: heads.lua planned with the same walk, so the tasks it takes
-- are the planned ones). Returns the taken {id, sid, name, inputs}.
local function lease_ready(services, queue_of, max_tasks, room, nonce, lease_seconds, worker, now_s, now)
  local taken = {}
  walk_ready(services, queue_of, room, function() return max_tasks - #taken end,
    function(key, id, sid, name, t)
      if not (t and t.s == 'queued') then
        redis.call('ZREM', key, id)  -- a stale entry: dropped, as a pop would
        return 'gone'
      end
      if not gate_admit(room, sid, t) then return 'passed' end
      redis.call('ZREM', key, id)
      take(sid, name, t, nonce, lease_seconds, worker, now_s, now)
      taken[#taken + 1] = {id, sid, name, inputs_json(sid, t)}
      return 'gone'
    end)
  store_buckets(room)
  return taken
end

-- Ready (due) queued tasks of held groups, per service, over the shard's scenarios that
-- have max_parallel tasks and are not final (P.."ps").
local function held_counts(now)
  local counts = {}
  for _, sid in ipairs(redis.call('SMEMBERS', P .. 'ps')) do
    local flat = redis.call('HGETALL', tasks_key(sid))
    for j = 2, #flat, 2 do
      local raw = flat[j]
      if string.find(raw, '"mp":', 1, true) and string.find(raw, '"s":"queued"', 1, true) then
        local t = cjson.decode(raw)
        if (t.av == nil or tonumber(t.av) <= now) and held(sid, t) then
          counts[t.v] = (counts[t.v] or 0) + 1
        end
      end
    end
  end
  return counts
end
