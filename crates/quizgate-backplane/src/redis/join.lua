-- ARGV 7: nickname  8: nickname key (case-folded)  9: session secret  10: max players
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
local m = redis.call('HMGET', META, 'phase', 'players')
if m[1] == 'ended' then return {'ended'} end
if tonumber(m[2]) >= tonumber(ARGV[10]) then return {'full'} end
if redis.call('HEXISTS', NICKS, ARGV[8]) == 1 then return {'taken'} end
local id = redis.call('HINCRBY', META, 'players', 1)
redis.call('HSET', NICKS, ARGV[8], id)
redis.call('HSET', PLAYERS, id, ARGV[7])
redis.call('HSET', SECRETS, id, ARGV[9])
redis.call('ZADD', SCORES, 0, pad(id))
if id <= 10 then top_changed() end
redis.call('HSET', META, 'lb_dirty', 1)
touch(false)
return {'ok', id, snapshot(id)}
