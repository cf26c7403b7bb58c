-- arg 1: player id. As quizgate_domain::Quiz::remove.
-- Reply: 'not_found' | 'wrong_phase' | 'no_such_player' | 'done'
if redis.call('EXISTS', META) == 0 then return 'not_found' end
refresh()
local phase = redis.call('HGET', META, 'phase')
if phase == 'question' or phase == 'ended' then return 'wrong_phase' end
local pid = arg(1)
if redis.call('HEXISTS', PLAYERS, pid) == 0 or removed(pid) then return 'no_such_player' end
-- Out of the scores is the mark (see `removed`); its name stays taken.
redis.call('ZREM', SCORES, pad(pid))
redis.call('HINCRBY', META, 'removed', 1)
top_changed()
redis.call('HSET', META, 'lb_dirty', 1)
emit(now_ms(), '{"t":"player_removed","player_id":' .. int(tonumber(pid)) .. '}')
return 'done'
