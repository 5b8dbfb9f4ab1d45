-- _lease.lua: max_parallel at lease time (mirror of the SQLite lease query and
-- within_max_parallel, decision 56). Loaded after _lib.lua; lease.lua, lease_many.lua,
-- claim.lua and stats.lua use it.
--
-- A task of a group with max_parallel carries "mp" (the limit) and "pg" (the group: its
-- template task id); the scenario hash counts the group's processing tasks in
-- "mp:" .. pg (set_status keeps it). A lease considers the ready tasks in ready order,
-- leaving out those whose group was at its limit when the lease began (held: they stay
-- queued where they are, and the tasks behind them are still reached); of the first
-- `max_tasks` it considers, it takes those its groups still have room for.

-- Processing tasks of the group as stored when this call began (counter changes of the
-- call are applied by settle()).
local function running_stored(sid, pg)
  return tonumber(redis.call('HGET', scenario_key(sid), 'mp:' .. pg)) or 0
end

-- ... and now, with this call's own leases counted.
local function running_now(sid, pg)
  local d = deltas[sid]
  return running_stored(sid, pg) + ((d and d['mp:' .. pg]) or 0)
end

local function held(sid, t)
  return t.mp ~= nil and running_stored(sid, t.pg) >= t.mp
end

local function head_before(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return bytes_less(a[2], b[2])
end

-- One priority's ready queues (`keys`), best first across them (score, then task id
-- byte-wise): `take_one(id, sid, name, t)` for each task taken. Considers at most
-- `budget` tasks; returns how many it considered. Entries whose task is no longer queued
-- are dropped on the way.
local function lease_scan(keys, budget, take_one)
  local considered, offsets = 0, {}
  for q = 1, #keys do offsets[q] = 0 end
  while considered < budget do
    local want = budget - considered
    local heads, fetched, used = {}, {}, {}
    for q, key in ipairs(keys) do
      local got = redis.call('ZRANGE', key, offsets[q], offsets[q] + want - 1, 'WITHSCORES')
      fetched[q], used[q] = #got / 2, 0
      for j = 1, #got, 2 do heads[#heads + 1] = {tonumber(got[j + 1]), got[j], q} end
    end
    if #heads == 0 then break end
    table.sort(heads, head_before)
    for _, h in ipairs(heads) do
      if considered >= budget then break end
      local id, q = h[2], h[3]
      used[q] = used[q] + 1
      local sid, name = split_id(id)
      local t = sid and load_task(sid, name)
      if not (t and t.s == 'queued') then
        redis.call('ZREM', keys[q], id)
      elseif held(sid, t) then
        offsets[q] = offsets[q] + 1
      else
        considered = considered + 1
        if t.mp ~= nil and running_now(sid, t.pg) >= t.mp then
          offsets[q] = offsets[q] + 1  -- the room left went to earlier tasks of this lease
        else
          redis.call('ZREM', keys[q], id)
          take_one(id, sid, name, t)
        end
      end
      -- A queue whose fetched window is used up may hold better entries than the other
      -- queues' rest: fetch again.
      if used[q] == fetched[q] and fetched[q] == want then break end
    end
  end
  return considered
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
