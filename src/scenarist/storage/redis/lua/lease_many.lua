-- lease_many.lua: take up to N ready tasks of several services, best first across them
-- (lease for a worker serving several services with one long poll).
-- Rows of the lifecycle table (core/transitions.py RULES): lease.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2..] six keys per service, in ARGV order: its ready queues, priority 4 down to 0
--          (P.."q:"..svc..":"..prio), then its delayed set (P.."d:"..svc)
-- ARGV[1..4]         common configuration (see _lib.lua)
-- ARGV[5]  integer max tasks
-- ARGV[6]  number  lease seconds, optional ("" = each task's timeout)
-- ARGV[7]  string  worker id, optional
-- ARGV[8]  number  now
-- ARGV[9]  string  nonce for the lease tokens
-- ARGV[10..] string services
-- Derived: as lease.lua.
-- Due delayed tasks of every service are promoted first. Order across the services is the
-- single-service order: higher priority first, then the older queue score, then task id.
-- Within a priority the heads of every service's queue are merged, so a service listed
-- first gets no precedence; a task whose max_parallel group is full stays queued
-- (lease_scan in _lease.lua). Returns a flat list: how many tasks it considered
-- (taken, or left for want of room in their max_parallel group), then task id, task
-- record, inputs (JSON), ...
local max_tasks = tonumber(ARGV[5])
local lease_seconds = opt(ARGV[6]) and tonumber(opt(ARGV[6]))
local worker, now_s, nonce = opt(ARGV[7]), ARGV[8], ARGV[9]
local now = tonumber(now_s)
local services = {}
for a = 10, #ARGV do services[#services + 1] = ARGV[a] end
for s, svc in ipairs(services) do
  local base = 2 + (s - 1) * 6
  for p = 0, 4 do check_key(KEYS[base + p], queue_key(svc, 4 - p)) end
  check_key(KEYS[base + 5], delayed_key(svc))
  -- Every due backoff is promoted before anything is taken: promoted in batches of the
  -- oldest, a due task of a higher priority could otherwise wait behind a full batch.
  while promote_due(svc, now_s, 1000) == 1000 do end
end

local taken, considered = {}, 0
local function take_one(id, sid, name, t)
  take(sid, name, t, nonce, lease_seconds, worker, now_s, now)
  taken[#taken + 1] = {id, sid, name, inputs_json(sid, t)}
end
for p = 0, 4 do
  if considered >= max_tasks then break end
  local keys = {}
  for s = 1, #services do keys[s] = KEYS[2 + (s - 1) * 6 + p] end
  considered = considered + lease_scan(keys, max_tasks - considered, take_one)
end
settle_all(now_s)
local out = {considered}
for _, x in ipairs(taken) do
  out[#out + 1] = x[1]
  out[#out + 1] = encoded_task(x[2], x[3])
  out[#out + 1] = x[4]
end
return out
