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

-- Row expand_group: the group's record goes with its counters (no event), and is kept
-- verbatim beside the scenario, so a rerun can bring the group back (decision 63).
local function remove_group(sid, name, g)
  redis.call('HSET', expanded_key(sid), name, redis.call('HGET', tasks_key(sid), name))
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

-- JSON text of a list of names (as cjson would write it, [] when empty).
local function names_json(names)
  if #names == 0 then return '[]' end
  return cjson.encode(names)
end

-- The part of an instance's record every instance of `g` shares, as JSON members.
local function shared_members(g, status, now_s)
  local parts = {',"v":', cjson.encode(g.v), ',"l":', cjson.encode(g.l), ',"a":0,"m":',
    cjson.encode(g.m), ',"o":', cjson.encode(g.o), ',"c":', cjson.encode(now_s),
    ',"n":', cjson.encode(g.n), ',"s":', cjson.encode(status)}
  if status == 'queued' then
    parts[#parts + 1] = ',"q":' .. cjson.encode(now_s)
  end
  if g.j ~= nil then parts[#parts + 1] = ',"j":' .. cjson.encode(g.j) end
  if g.op then parts[#parts + 1] = ',"op":true' end
  if g.ln then parts[#parts + 1] = ',"ln":' .. cjson.encode(g.ln) end
  if g.af then parts[#parts + 1] = ',"af":' .. cjson.encode(g.af) end
  if g.tn then parts[#parts + 1] = ',"tn":' .. cjson.encode(g.tn) end
  if g.mp ~= nil then
    parts[#parts + 1] = ',"mp":' .. cjson.encode(g.mp) .. ',"pg":' .. cjson.encode(g.pg)
  end
  return table.concat(parts)
end

-- Rows instance_ready / instance_waiting: every instance of group `g`, in index order.
-- 10,000 instances are one completion: each record's JSON is put together from the
-- shared members and its own (payload, parents, dependents, plan index) rather than
-- encoded as a table, the records are written with one HSET per chunk, the counters
-- moved once, and the ready ones queued with one ZADD per chunk. Each record is also
-- kept decoded in the unit of work, for any later step of the call that reads it.
local function add_instances(sid, g, ctx)
  local status = g.n <= 0 and 'queued' or 'pending'
  local shared = shared_members(g, status, ctx.now_s)
  local same_d, same_D = not ctx.zipped, true
  for _, d in ipairs(ctx.dependents) do
    if ctx.zips[d] then same_D = false end
  end
  local d_json = same_d and names_json(g.d)
  local D_json = same_D and names_json(ctx.dependents)
  local hset, adds = {}, {}
  for k, name in ipairs(ctx.names) do
    local depends_on, dependents = g.d, ctx.dependents
    if not same_d then
      depends_on = {}
      for j, p in ipairs(g.d) do depends_on[j] = p == ctx.zipped[1] and ctx.zipped[2][k] or p end
    end
    if not same_D then
      dependents = {}
      for j, d in ipairs(ctx.dependents) do dependents[j] = ctx.zips[d] and (d .. '_' .. k) or d end
    end
    local index, payload = take_index(sid, ctx), ctx.rendered[k]
    local t = {i = index, v = g.v, p = payload, d = depends_on, D = dependents, l = g.l,
      a = 0, m = g.m, o = g.o, n = g.n, s = status, c = ctx.now_s, j = g.j, op = g.op,
      mp = g.mp, pg = g.pg, ln = g.ln, af = g.af, tn = g.tn}
    if status == 'queued' then t.q = ctx.now_s end
    cache[sid][name] = t
    hset[#hset + 1] = name
    hset[#hset + 1] = '{"i":' .. index .. ',"p":' .. cjson.encode(payload)
      .. ',"d":' .. (d_json or names_json(depends_on))
      .. ',"D":' .. (D_json or names_json(dependents)) .. shared .. '}'
    if #hset >= 1000 then
      redis.call('HSET', tasks_key(sid), unpack(hset))
      hset = {}
    end
    add_event(sid, name, status, 0, ctx.now_s)
    if status == 'queued' then
      adds[#adds + 1] = ctx.now_s
      adds[#adds + 1] = sid .. ':' .. name
      push_list(sid, name, t)
      ctx.released[#ctx.released + 1] = sid .. ':' .. name
    end
  end
  if #hset > 0 then redis.call('HSET', tasks_key(sid), unpack(hset)) end
  local count = #ctx.names
  bump(sid, '#' .. status, count)
  bump(sid, g.v .. '#' .. status, count)
  bump(sid, 'n', count)
  -- Queued at now, so never delayed; unpack() of too many arguments would overflow the
  -- Lua C stack, hence the chunks.
  if #adds > 0 then
    if g.tn then redis.call('SADD', tenants_key(g.v), g.tn) end
    local key = queue_key(g.v, priority(g), g.tn)
    for first = 1, #adds, 7000 do
      redis.call('ZADD', key, unpack(adds, first, math.min(first + 6999, #adds)))
    end
    mark_ready(g.v)
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
  add_instances(sid, g, {names = names, rendered = rendered, zipped = zipped, zips = zips,
    dependents = dependents, now_s = ctx.now_s, released = ctx.released,
    next_index = ctx.next_index})
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
