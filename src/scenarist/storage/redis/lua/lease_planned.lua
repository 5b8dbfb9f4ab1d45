-- lease_planned.lua: take the tasks a Redis Cluster lease planned on this shard, in the
-- plan's order (fair_lease.py: tenants' fair share is ranked across every shard, so a
-- shard's own walk could not find the planned tasks). A task no longer in its ready queue
-- (a concurrent lease took it) or that the lease's one rule now holds back (the worker's
-- affinity, its max_parallel group) is left out; the caller plans again for the rest.
-- Rows of the lifecycle table (core/transitions.py RULES): lease.
--
-- KEYS[1]  string  shard prefix (see _lib.lua)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  number  lease seconds, optional ("" = each task's timeout)
-- ARGV[6]  string  worker id, optional
-- ARGV[7]  number  now
-- ARGV[8]  string  nonce for the lease tokens
-- ARGV[9]  string  the worker's labels (JSON object, core/affinity.py)
-- ARGV[10..] string the planned task ids, in the plan's order
-- Derived: the tasks' ready queues, scenario hashes, tasks hashes and event streams,
--          P.."lx", P.."fl", P.."tf", P.."ix:"..status, P.."ob".
-- Returns a flat list: task id, task record, inputs (JSON), ... per leased task.
local lease_seconds = opt(ARGV[5]) and tonumber(opt(ARGV[5]))
local worker, now_s, nonce = opt(ARGV[6]), ARGV[7], ARGV[8]
local now = tonumber(now_s)
local room = new_room({}, now, cjson.decode(ARGV[9]))
local taken = {}
for a = 10, #ARGV do
  local id = ARGV[a]
  local sid, name = split_id(id)
  local t = sid and load_task(sid, name)
  if t and t.s == 'queued' and redis.call('ZSCORE', queue_key(t.v, priority(t), t.tn), id)
      and gate_admit(room, sid, t) then
    dequeue(sid, name, t)
    take(sid, name, t, nonce, lease_seconds, worker, now_s, now)
    taken[#taken + 1] = {id, sid, name, inputs_json(sid, t)}
  end
end
settle_all(now_s)
local out = {}
for _, x in ipairs(taken) do
  out[#out + 1] = x[1]
  out[#out + 1] = encoded_task(x[2], x[3])
  out[#out + 1] = x[4]
end
return out
