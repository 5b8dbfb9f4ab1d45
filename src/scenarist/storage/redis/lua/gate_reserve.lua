-- gate_reserve.lua: reserve room under a service's cap and bucket on Redis Cluster, before
-- the shard leases (decision 68). The service's gate keys share a slot of their own.
-- Rows of the lifecycle table (core/transitions.py RULES): none (gate state only).
--
-- KEYS[1]  string  shard prefix of the service's gate slot "{<key_prefix>:gate:<service>}:"
--                  (keys.py KeySpace.gate)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  service
-- ARGV[6]  number  now
-- ARGV[7]  integer wanted
-- ARGV[8]  integer cap ("" = none)
-- ARGV[9]  number  tokens per second ("" = no rate limit)
-- ARGV[10] integer burst
-- ARGV[11] string  nonce of the lease (names its reservations)
-- ARGV[12] number  reservation expiry (a lease that never confirms frees them then)
-- ARGV[13..] string confirmed leases found ended ("<task id>|<token>"): removed first
-- Derived: P.."f" zset confirmed leases (score +inf), P.."p" zset reservations (score =
--          expiry), P.."rb" the bucket (see _lib.lua).
-- Returns how many tasks the lease may take; that many reservations are added, named
-- "r|"..nonce.."|"..i for i = 1..n (a second call of one lease uses another nonce).
local svc, now, wanted = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local cap, rate, burst = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local nonce, expiry = ARGV[11], ARGV[12]
local confirmed, pending = P .. 'f', P .. 'p'
for a = 13, #ARGV do redis.call('ZREM', confirmed, ARGV[a]) end
redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)
local reserved = redis.call('ZCARD', pending)
local room = wanted
if cap then room = math.min(room, cap - redis.call('ZCARD', confirmed) - reserved) end
if rate then
  -- Reserved tokens are taken when the lease confirms; until then they are spoken for.
  room = math.min(room, math.floor(bucket_tokens(svc, rate, burst, now) - reserved))
end
room = math.max(0, room)
for i = 1, room do redis.call('ZADD', pending, expiry, 'r|' .. nonce .. '|' .. i) end
return room
