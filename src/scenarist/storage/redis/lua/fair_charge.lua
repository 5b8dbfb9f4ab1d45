-- fair_charge.lua: move the tenants' passes for the tasks a Redis Cluster lease took
-- (fair_lease.py), in the order it took them, as the lease's walk does on one node
-- (charge in _lease.lua, core/tenants.py FairShare).
-- Rows of the lifecycle table (core/transitions.py RULES): none (fair share state only).
--
-- KEYS[1]  string  shard prefix of the passes' slot "{<key_prefix>:fair}:" (keys.py KeySpace.fair)
-- ARGV[1..4]       common configuration (see _lib.lua)
-- ARGV[5]  string  tenants (JSON): name -> {w = weight}
-- ARGV[6..] string service, tenant, ... of each task taken
-- Derived: P.."fp" the passes (field service.."|"..tenant; service.."|" the virtual time).
-- Returns how many tasks were charged.
local room = new_room({}, 0, {}, cjson.decode(ARGV[5]))
for a = 6, #ARGV - 1, 2 do charge(room, ARGV[a], ARGV[a + 1]) end
store_passes(room)
return (#ARGV - 5) / 2
