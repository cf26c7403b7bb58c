-- arg 1: nickname  2: nickname key (case-folded)  3: session secret
-- Reply: {'not_found'} | {'ended'} | {'locked'} | {'full'} | {'taken'} | {'ok', player id, snapshot}
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
refresh()
local m = redis.call('HMGET', META, 'phase', 'players', 'locked', 'max')
if m[1] == 'ended' then return {'ended'} end
if m[3] == '1' then return {'locked'} end
-- 'max' is the quiz's own cap, from its creator's quota (absent in quizzes
-- stored before it existed).
if tonumber(m[2]) >= math.min(MAX_PLAYERS, tonumber(m[4] or MAX_PLAYERS)) then return {'full'} end
if redis.call('HEXISTS', NICKS, arg(2)) == 1 then return {'taken'} end
local id = redis.call('HINCRBY', META, 'players', 1)
redis.call('HSET', NICKS, arg(2), id)
redis.call('HSET', PLAYERS, id, arg(1))
redis.call('HSET', SECRETS, id, arg(3))
redis.call('ZADD', SCORES, 0, pad(id))
-- A newcomer (0 points, the highest id) is last: in the top 10 only if it is among the first ten.
if redis.call('ZCARD', SCORES) <= TOP_SIZE then top_changed() end
redis.call('HSET', META, 'lb_dirty', 1)
return {'ok', id, snapshot(id)}
