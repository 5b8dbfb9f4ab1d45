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

-- `labels`: the leasing worker's (core/affinity.py), {} for none. `tenants`: the
-- catalog's, name -> {w = weight, cap = max_in_flight, quota}, each optional, {} for
-- none: then no pass moves and every turn is equal (core/tenants.py FairShare). A quota
-- is Redis Cluster's: the room reserved in the tenant's gate slot (fair_lease.py).
local function new_room(gates, now, labels, tenants)
  tenants = tenants or {}
  return {gates = gates, now = now, labels = labels or {}, taken = {}, tokens = {}, spent = {},
    keys = {}, groups = {}, flying = {}, tenants = tenants, charging = next(tenants) ~= nil,
    tenant_flying = {}, tenant_taken = {}, passes = {}, moved = {}}
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
-- room, then the group's, the key's and the tenant's; a task admitted counts against
-- all four for the rest of the walk.
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
  end
  local tn = t.tn or 'default'
  local policy = room.tenants[tn]
  if policy and policy.quota and (room.tenant_taken[tn] or 0) >= policy.quota then
    return false
  end
  if policy and policy.cap then
    if room.tenant_flying[tn] == nil then
      room.tenant_flying[tn] = tonumber(redis.call('HGET', K_TENANT_FLIGHT, tn) or '0')
    end
    if room.tenant_flying[tn] >= policy.cap then return false end
    room.tenant_flying[tn] = room.tenant_flying[tn] + 1
  end
  room.tenant_taken[tn] = (room.tenant_taken[tn] or 0) + 1
  if t.kk then room.keys[t.kk] = room.keys[t.kk] + 1 end
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

-- Fair share (core/tenants.py FairShare): a (service, tenant)'s pass and a service's
-- virtual time, read once per call from P.."fp" and moved in memory by charge().
local function stored_pass(room, field)
  local value = room.passes[field]
  if value == nil then
    value = tonumber(redis.call('HGET', K_PASSES, field) or '') or false
    room.passes[field] = value
  end
  return value or nil
end

local function turn(room, svc, tn)
  if not room.charging then return 0 end
  local virtual = stored_pass(room, svc .. '|') or 0
  local own = stored_pass(room, svc .. '|' .. tn)
  if own == nil then return virtual end
  return math.max(own, virtual)
end

local function charge(room, svc, tn)
  if not room.charging then return end
  local now_turn = turn(room, svc, tn)
  local policy = room.tenants[tn]
  room.passes[svc .. '|' .. tn] = now_turn + 1.0 / (policy and policy.w or 1)
  room.passes[svc .. '|'] = now_turn
  room.moved[svc .. '|' .. tn] = true
  room.moved[svc .. '|'] = true
end

local function store_passes(room)
  local flat = {}
  for field in pairs(room.moved) do
    flat[#flat + 1] = field
    flat[#flat + 1] = fmt(room.passes[field])
  end
  if #flat > 0 then redis.call('HSET', K_PASSES, unpack(flat)) end
end

-- The lane of a queue priority, ranked (core/model.py lane_of_priority): a lane's
-- priorities start at its offset (_lib.lua LANE_OFFSET).
local function lane_of(prio)
  if prio >= LANE_OFFSET.interactive then return 2 end
  return prio >= 0 and 1 or 0
end

-- The lease's walk over the ready queues of `services`, in the fair order of
-- core/tenants.py fair_walk: one stream per (service, tenant), its queues from the
-- highest priority down (the default tenant's queue keys from `queue_of(s, prio)`, the
-- other tenants' of P.."tn:"..svc derived); among the streams whose head is in the
-- highest lane with a head, each service's tenant with the smallest turn (ties: the
-- ready order of the heads), and of those the service whose head comes first in ready
-- order (higher priority, older score, task id). Without tenants every turn is 0: the
-- ready order across the services. `more(svc, tenant)` says how many more entries of the
-- service (or of that tenant in it) the walk wants (0: it looks at that stream no
-- further); a service whose cap, bucket or quota is exhausted is looked at no further
-- either. `visit(key, id, sid, name, t, score, stream)` says what became of the entry: 'taken' (the lease took it: its tenant is
-- charged), 'gone' (it left the queue: a stale entry dropped), 'kept' (it stays, and
-- counts for the caller, charged as taken) or 'passed' (it stays, held back). At most
-- HELD_SCAN entries are passed over per queue, so a long run of held tasks bounds the call.
local HELD_SCAN, PAGE = 1000, 64
local function walk_ready(services, queue_of, room, more, visit)
  local streams = {}
  for s, svc in ipairs(services) do
    local tenants = redis.call('SMEMBERS', tenants_key(svc))
    table.insert(tenants, 1, false)  -- the default tenant first
    for _, tn in ipairs(tenants) do
      streams[#streams + 1] = {s = s, svc = svc, tn = tn or nil, name = tn or 'default',
        prio = MAX_PRIORITY, c = nil, done = false}
    end
  end
  local function cursor_head(c)
    if c.passed >= HELD_SCAN then return nil end
    if c.pos > #c.buf then
      -- A page is what the walk still wants (more only once tasks were held back), so a
      -- lease of one task reads one entry.
      local size = math.min(PAGE, more(c.svc, c.tn) + c.passed)
      local got = redis.call('ZRANGE', c.key, c.stays, c.stays + size - 1, 'WITHSCORES')
      c.buf, c.pos = {}, 1
      for j = 1, #got, 2 do c.buf[#c.buf + 1] = {tonumber(got[j + 1]), got[j], got[j + 1]} end
      if #c.buf == 0 then return nil end
    end
    return c.buf[c.pos]
  end
  -- A stream's head: nil once the walk wants no more of its service, or the service's
  -- room is exhausted, or every queue of the stream is passed.
  local function head(st)
    if st.done then return nil end
    local left = service_room(room, st.svc)
    if more(st.svc, st.name) <= 0 or (left and left <= 0) then
      st.done = true
      return nil
    end
    while st.prio >= MIN_PRIORITY do
      if not st.c then
        local key = st.tn and queue_key(st.svc, st.prio, st.tn) or queue_of(st.s, st.prio)
        -- stays: entries before the cursor still queued; passed: those held back.
        st.c = {key = key, svc = st.svc, tn = st.name, buf = {}, pos = 1, stays = 0, passed = 0}
      end
      local h = cursor_head(st.c)
      if h then return h end
      st.prio, st.c = st.prio - 1, nil
    end
    st.done = true
    return nil
  end
  local function first(a, ha, b, hb)  -- ready order of two heads
    if a.prio ~= b.prio then return a.prio > b.prio end
    if ha[1] ~= hb[1] then return ha[1] < hb[1] end
    return bytes_less(ha[2], hb[2])
  end
  while true do
    local heads, top = {}, nil
    for i, st in ipairs(streams) do
      heads[i] = head(st)
      if heads[i] and (top == nil or lane_of(st.prio) > top) then top = lane_of(st.prio) end
    end
    if top == nil then break end
    local best = {}  -- service -> {stream index, turn}
    for i, st in ipairs(streams) do
      if heads[i] and lane_of(st.prio) == top then
        local t_i = turn(room, st.svc, st.name)
        local b = best[st.svc]
        if not b or t_i < b[2] or (t_i == b[2] and first(st, heads[i], streams[b[1]], heads[b[1]])) then
          best[st.svc] = {i, t_i}
        end
      end
    end
    local pick
    for _, svc in ipairs(services) do
      local b = best[svc]
      if b and (not pick or first(streams[b[1]], heads[b[1]], streams[pick], heads[pick])) then
        pick = b[1]
      end
    end
    local st = streams[pick]
    local c, h = st.c, heads[pick]
    c.pos = c.pos + 1
    local id = h[2]
    local sid, name = split_id(id)
    local outcome = visit(c.key, id, sid, name, sid and load_task(sid, name), h[3], st)
    if outcome == 'kept' or outcome == 'passed' then c.stays = c.stays + 1 end
    if outcome == 'passed' then c.passed = c.passed + 1 end
    if outcome == 'taken' or outcome == 'kept' then charge(room, st.svc, st.name) end
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
      return 'taken'
    end)
  store_buckets(room)
  store_passes(room)
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
