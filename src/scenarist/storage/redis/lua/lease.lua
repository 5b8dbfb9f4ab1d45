-- lease.lua: take up to N ready tasks of one service in ready order (lease), within the
-- lease's one rule (core/gates.py LeaseRoom: max_parallel groups, the service's cap and
-- bucket, concurrency keys; lease_ready in _lease.lua).
-- Rows of the lifecycle table (core/transitions.py RULES): lease.
--
-- KEYS[1]    string  shard prefix (see _lib.lua)
-- KEYS[2..16] zset   ready queues of the service, priority 9 down to -5 (P.."q:"..svc..":"..prio)
-- KEYS[17]   zset    delayed set of the service (P.."d:"..svc)
-- ARGV[1..4]         common configuration (see _lib.lua)
-- ARGV[5]  string  service
-- ARGV[6]  integer max tasks
-- ARGV[7]  number  lease seconds, optional ("" = each task's timeout)
-- ARGV[8]  string  worker id, optional
-- ARGV[9]  number  now
-- ARGV[10] string  nonce for the lease tokens
-- ARGV[11] string  the worker's labels (JSON object, core/affinity.py)
-- ARGV[12] string  gates (JSON): service -> {cap, rate, burst, quota}, each optional
-- ARGV[13] string  tenants (JSON): name -> {w = weight, cap = max_in_flight}, {} for none
-- Derived: the leased tasks' scenario hashes, tasks hashes and event streams (any scenario
--          of this shard), P.."lx", P.."fl", P.."kf", P.."rb", P.."ix:"..status, P.."ob",
--          the tenants' ready queues (named by P.."tn:"..svc), P.."tf", P.."fp".
-- Due delayed tasks are promoted first; within a priority the oldest score goes first,
-- ties by task id; a task the room holds back stays queued. Returns a flat list: task id,
-- task record, inputs (JSON), ... per leased task.
local svc, max_tasks = ARGV[5], tonumber(ARGV[6])
local lease_seconds = opt(ARGV[7]) and tonumber(opt(ARGV[7]))
local worker, now_s, nonce = opt(ARGV[8]), ARGV[9], ARGV[10]
local now = tonumber(now_s)
for i = 2, 1 + QUEUES do check_key(KEYS[i], queue_key(svc, MAX_PRIORITY + 2 - i)) end
check_key(KEYS[2 + QUEUES], delayed_key(svc))

-- Every due backoff is promoted before anything is taken: promoted in batches of the
-- oldest, a due task of a higher priority could otherwise wait behind a full batch.
while promote_due(svc, now_s, 1000) == 1000 do end
local room = new_room(
  cjson.decode(ARGV[12]), now, cjson.decode(ARGV[11]), cjson.decode(ARGV[13]))
local taken = lease_ready({svc}, function(_, prio) return KEYS[MAX_PRIORITY + 2 - prio] end,
  max_tasks, room, nonce, lease_seconds, worker, now_s, now)
settle_all(now_s)
local out = {}
for _, x in ipairs(taken) do
  out[#out + 1] = x[1]
  out[#out + 1] = encoded_task(x[2], x[3])
  out[#out + 1] = x[4]
end
return out
