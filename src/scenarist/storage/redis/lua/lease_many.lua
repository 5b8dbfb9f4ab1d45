-- lease_many.lua: take up to N ready tasks of several services, best first across them
-- (lease for a worker serving several services with one long poll), within the lease's
-- one rule (core/gates.py LeaseRoom; lease_ready in _lease.lua).
-- Rows of the lifecycle table (core/transitions.py RULES): lease.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- KEYS[2..] sixteen keys per service, in ARGV order: its ready queues, priority 9 down to -5
--          (P.."q:"..svc..":"..prio), then its delayed set (P.."d:"..svc)
-- ARGV[1..4]         common configuration (see _lib.lua)
-- ARGV[5]  integer max tasks
-- ARGV[6]  number  lease seconds, optional ("" = each task's timeout)
-- ARGV[7]  string  worker id, optional
-- ARGV[8]  number  now
-- ARGV[9]  string  nonce for the lease tokens
-- ARGV[10] string  the worker's labels (JSON object, core/affinity.py)
-- ARGV[11] string  gates (JSON): service -> {cap, rate, burst, quota}, each optional
-- ARGV[12] string  tenants (JSON): name -> {w = weight, cap = max_in_flight}, {} for none
-- ARGV[13..] string services
-- Derived: as lease.lua.
-- Due delayed tasks of every service are promoted first. Order across the services is the
-- single-service order: higher priority first, then the older queue score, then task id.
-- Within a priority the heads of every service's queue are merged, so a service listed
-- first gets no precedence. Returns a flat list: task id, task record, inputs (JSON), ...
local max_tasks = tonumber(ARGV[5])
local lease_seconds = opt(ARGV[6]) and tonumber(opt(ARGV[6]))
local worker, now_s, nonce = opt(ARGV[7]), ARGV[8], ARGV[9]
local now = tonumber(now_s)
local services = {}
for a = 13, #ARGV do services[#services + 1] = ARGV[a] end
for s, svc in ipairs(services) do
  local base = 2 + (s - 1) * (QUEUES + 1)
  for p = 0, QUEUES - 1 do check_key(KEYS[base + p], queue_key(svc, MAX_PRIORITY - p)) end
  check_key(KEYS[base + QUEUES], delayed_key(svc))
  -- Every due backoff is promoted before anything is taken: promoted in batches of the
  -- oldest, a due task of a higher priority could otherwise wait behind a full batch.
  while promote_due(svc, now_s, 1000) == 1000 do end
end

local room = new_room(
  cjson.decode(ARGV[11]), now, cjson.decode(ARGV[10]), cjson.decode(ARGV[12]))
local taken = lease_ready(services,
  function(s, prio) return KEYS[2 + (s - 1) * (QUEUES + 1) + MAX_PRIORITY - prio] end,
  max_tasks, room, nonce, lease_seconds, worker, now_s, now)
settle_all(now_s)
local out = {}
for _, x in ipairs(taken) do
  out[#out + 1] = x[1]
  out[#out + 1] = encoded_task(x[2], x[3])
  out[#out + 1] = x[4]
end
return out
