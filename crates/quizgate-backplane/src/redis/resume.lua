-- arg 1: player id  2: session secret  3: last seq the client saw
-- Reply: {'invalid'} | {'removed'} | welcome(snapshot, missed)
if redis.call('EXISTS', META) == 0 then return {'invalid'} end
refresh()
if not same_secret(redis.call('HGET', SECRETS, arg(1)), arg(2)) then return {'invalid'} end
if removed(arg(1)) then return {'removed'} end
return welcome(snapshot(tonumber(arg(1))), replay(tonumber(arg(3))))
