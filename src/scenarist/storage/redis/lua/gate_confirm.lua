-- gate_confirm.lua: after the shard leases on Redis Cluster, turn a lease's reservations
-- into its leased tasks and take their tokens (decision 68).
-- Rows of the lifecycle table (core/transitions.py RULES): none (gate state only).
--
-- KEYS[1]  string  shard prefix of the service's gate slot "{<key_prefix>:gate:<service>}:"
--                  (keys.py KeySpace.gate)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  service
-- ARGV[6]  number  now (the lease's)
-- ARGV[7]  number  tokens per second ("" = no rate limit)
-- ARGV[8]  integer burst
-- ARGV[9]  integer k: how many reservations follow
-- ARGV[10..9+k] string the lease's reservations (see gate_reserve.lua), dropped
-- ARGV[10+k..] string the leased tasks ("<task id>|<token>"), confirmed
-- Derived: P.."f", P.."p", P.."rb" as gate_reserve.lua.
-- The tokens of the leased tasks are taken one
-- by one from the bucket refilled at `now`, as core/gates.py LeaseRoom does, so a bucket
-- is bit-equal to the one SQLite keeps for the same leases.
local svc, now = ARGV[5], tonumber(ARGV[6])
local rate, burst, k = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local confirmed, pending = P .. 'f', P .. 'p'
for a = 10, 9 + k do redis.call('ZREM', pending, ARGV[a]) end
local used = #ARGV - 9 - k
for a = 10 + k, #ARGV do redis.call('ZADD', confirmed, '+inf', ARGV[a]) end
if rate and used > 0 then
  local room = new_room({[svc] = {rate = rate, burst = burst}}, now)
  for _ = 1, used do
    room.tokens[svc] = tokens_of(room, svc, room.gates[svc]) - 1
  end
  room.spent[svc] = true
  store_buckets(room)
end
return used
