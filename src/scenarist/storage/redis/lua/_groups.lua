-- _groups.lua: a for_each group expanding into its instances inside the completion that
-- releases it (mirror of core/group_expansion.py; rows expand_group, instance_ready,
-- instance_waiting, rewire_parent, rewire_dependent). Loaded right after _lib.lua, whose
-- helpers it uses; complete.lua calls it.
--
-- The service renders the instances' payloads first and sends them with the completion:
-- an object group name -> [payload as JSON text, ...] (stored verbatim as each
-- instance's "p"). A completion that releases a group without them changes nothing and
-- answers the group's name (missing_instances), so the service renders it and repeats.
-- Records of a group: "G" its spec (JSON text), "Z" the upstream group it zips with;
-- below a group: "J" the join (JSON text) turned into "j" once no parent is a group.

-- Mirror of core.group_expansion.join_need.
local function join_need(join_json, parents)
  if join_json == nil then return nil end
  local join = cjson.decode(join_json)
  if join == 'all' then return nil end
  if join == 'any' then return math.min(1, parents) end
  if join.min_success ~= nil then return join.min_success end
  return math.ceil(join.min_success_ratio * parents - 1e-9)
end

-- The first group (in expansion order) whose instances `payloads` lacks: the group
-- `name` needs its own list, and each live group zipped with it one of the same length.
local function missing_group(sid, name, g, payloads, count)
  local rendered = payloads[name]
  if rendered == nil or (count and #rendered ~= count) then return name end
  for _, d in ipairs(distinct(g.D)) do
    local c = load_task(sid, d)
    if c and not FINAL[c.s] and c.Z == name then
      local missing = missing_group(sid, d, c, payloads, #rendered)
      if missing then return missing end
    end
  end
  return nil
end

-- Before anything changes: the group completing `t` would release without instances.
local function missing_instances(sid, t, payloads)
  for _, d in ipairs(distinct(t.D)) do
    local c = load_task(sid, d)
    if c and c.G and c.s == 'pending' and c.n - 1 <= 0 then
      local missing = missing_group(sid, d, c, payloads, nil)
      if missing then return missing end
    end
  end
  return nil
end

local function replace_name(names, group, instances)
  local out = {}
  for _, n in ipairs(names) do
    if n == group then
      for _, i in ipairs(instances) do out[#out + 1] = i end
    else
      out[#out + 1] = n
    end
  end
  return out
end

-- Row expand_group: the group's record goes with its counters (no event).
local function remove_group(sid, name, g)
  redis.call('HDEL', tasks_key(sid), name)
  cache[sid][name] = false
  if dirty[sid] then dirty[sid][name] = nil end
  bump(sid, '#' .. g.s, -1)
  bump(sid, g.v .. '#' .. g.s, -1)
  bump(sid, 'n', -1)
  if not FINAL[g.s] then bump(sid, 'g', -1) end
end

-- The plan index the next instance of the scenario takes (kept in "nx"; a scenario
-- stored before that field had no group, so its plan ends at its task count "n").
local function take_index(sid, ctx)
  local i = ctx.next_index[sid]
  if i == nil then
    local stored = redis.call('HMGET', scenario_key(sid), 'nx', 'n')
    i = tonumber(stored[1] or stored[2])
  end
  ctx.next_index[sid] = i + 1
  return i
end

-- Rows instance_ready / instance_waiting: instance `k` of group `g`.
local function add_instance(sid, g, k, ctx)
  local name, payload = ctx.names[k], ctx.rendered[k]
  local depends_on = {}
  for j, p in ipairs(g.d) do
    depends_on[j] = (ctx.zipped and p == ctx.zipped[1]) and ctx.zipped[2][k] or p
  end
  local dependents = {}
  for j, d in ipairs(ctx.dependents) do
    dependents[j] = ctx.zips[d] and (d .. '_' .. k) or d
  end
  local waiting = g.n
  local t = {i = take_index(sid, ctx), v = g.v, p = payload, d = depends_on, D = dependents,
    l = g.l, a = 0, m = g.m, o = g.o, n = waiting, c = ctx.now_s, j = g.j, op = g.op,
    mp = g.mp, pg = g.pg}
  t.s = waiting <= 0 and 'queued' or 'pending'
  if waiting <= 0 then t.q = ctx.now_s end
  cache[sid][name] = t
  save_task(sid, name, t)
  bump(sid, '#' .. t.s, 1)
  bump(sid, t.v .. '#' .. t.s, 1)
  bump(sid, 'n', 1)
  add_event(sid, name, t.s, 0, ctx.now_s)
  if waiting <= 0 then
    -- Queued at now, so never delayed: one ZADD per chunk for the whole group (flush_adds).
    local adds = ctx.queue_adds
    adds[#adds + 1] = ctx.now_s
    adds[#adds + 1] = sid .. ':' .. name
    ctx.queue_key = queue_key(t.v, priority(t))
    mark_ready(t.v)
    push_list(sid, name, t)
    ctx.released[#ctx.released + 1] = sid .. ':' .. name
  end
end

-- ZADD in chunks: unpack() of too many arguments would overflow the Lua C stack.
local function flush_adds(ctx)
  local adds = ctx.queue_adds
  for first = 1, #adds, 7000 do
    redis.call('ZADD', ctx.queue_key, unpack(adds, first, math.min(first + 6999, #adds)))
  end
end

-- Row rewire_dependent: `c` waits for the instances instead of the group; its join's
-- need is known once no parent is an unexpanded group. A join the instances cannot reach
-- skips it (and the loss cascades); waiting for none releases it.
local function rewire_dependent(sid, name, c, group, instances, ctx)
  c.d = replace_name(c.d, group, instances)
  c.n = c.n - 1 + #instances
  local is_instance, unexpanded = {}, false
  for _, i in ipairs(instances) do is_instance[i] = true end
  local parents = distinct(c.d)
  for _, p in ipairs(parents) do
    local pt = not is_instance[p] and load_task(sid, p)
    if pt and pt.G then unexpanded = true end
  end
  if unexpanded then c.j = nil else c.j = join_need(c.J, #parents) end
  save_task(sid, name, c)
  if c.j ~= nil and out_of_reach(sid, c, {}) then
    lose(sid, name, c, ctx.now_s, ctx.now, true, ctx.released)
  elseif c.n <= 0 then
    c.q = ctx.now_s
    set_status(sid, name, c, 'queued', ctx.now_s)
    enqueue(sid, name, c, ctx.now_s, ctx.now)
    ctx.released[#ctx.released + 1] = sid .. ':' .. name
  end
end

-- Group `name` becomes name_1 .. name_N (payloads[name]); `zipped` = {upstream group,
-- its instance names} for a group zipped with one expanding in the same step. Parents
-- name the instances, dependents wait for them, zipped dependents expand alongside.
local function expand_group(sid, name, g, zipped, ctx)
  local rendered = ctx.payloads[name]
  local names = {}
  for k = 1, #rendered do names[k] = name .. '_' .. k end
  local dependents, zips = distinct(g.D), {}
  for _, d in ipairs(dependents) do
    local c = load_task(sid, d)
    if c and c.Z == name then zips[d] = true end
  end
  remove_group(sid, name, g)
  local inner = {names = names, rendered = rendered, zipped = zipped, zips = zips,
    dependents = dependents, now_s = ctx.now_s, now = ctx.now, released = ctx.released,
    next_index = ctx.next_index}
  inner.queue_adds = {}
  for k = 1, #rendered do add_instance(sid, g, k, inner) end
  flush_adds(inner)
  for _, pn in ipairs(distinct(g.d)) do
    if not (zipped and pn == zipped[1]) then
      local p = load_task(sid, pn)
      if p then
        p.D = replace_name(p.D, name, names)
        save_task(sid, pn, p)
      end
    end
  end
  for _, d in ipairs(dependents) do
    local c = load_task(sid, d)
    if c and not FINAL[c.s] then
      if zips[d] then
        expand_group(sid, d, c, {name, names}, ctx)
      else
        rewire_dependent(sid, d, c, name, names, ctx)
      end
    end
  end
end

-- The groups (each {name, record}) one completion of a task of `sid` released, expanded
-- in order after every count-off of the completion (`released` collects the ids of the
-- tasks made ready).
local function expand_released(sid, groups, payloads, released, now_s, now)
  if #groups == 0 then return end
  local ctx = {payloads = payloads, released = released, now_s = now_s, now = now,
    next_index = {}}
  for _, entry in ipairs(groups) do expand_group(sid, entry[1], entry[2], nil, ctx) end
  local next_i = ctx.next_index[sid]
  if next_i then redis.call('HSET', scenario_key(sid), 'nx', next_i) end
end
