-- arg 1: host secret  2: last seq the host saw ('' on a first `host`)
-- Reply: {'not_found'} | {'invalid'} | welcome(snapshot, missed)
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
refresh()
if not same_secret(redis.call('HGET', META, 'host'), arg(1)) then return {'invalid'} end
local missed = {}
if arg(2) ~= '' then missed = replay(tonumber(arg(2))) end
return welcome(snapshot(false), missed)
