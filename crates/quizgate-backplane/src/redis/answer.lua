-- arg 1: player id  2: question index  3: choice
-- Reply: {'not_found'} | {'duplicate', record} | {'wrong_phase'} | {'late'} | {'invalid_choice'} | {'accepted', record}
-- Dedupe, deadline by Redis's clock, score, record and acknowledge: one atomic step.
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
refresh()
local pid, idx, choice = arg(1), tonumber(arg(2)), tonumber(arg(3))
if redis.call('HEXISTS', PLAYERS, pid) == 0 then return {'not_found'} end
local akey = pid .. ':' .. int(idx)
local rec = redis.call('HGET', ANSWERS, akey)
if rec then return {'duplicate', rec} end
local m = redis.call('HMGET', META, 'phase', 'cur', 'started', 'deadline', 'qchoices', 'qcorrect', 'qpoints', 'qlimit', 'players')
local phase, cur = m[1], tonumber(m[2])
if cur < 0 or phase == 'ended' or idx > cur then return {'wrong_phase'} end
local now = now_ms()
if idx < cur or phase == 'reveal' or now > tonumber(m[4]) then return {'late'} end
if choice >= tonumber(m[5]) then return {'invalid_choice'} end
local points = 0
if choice == tonumber(m[6]) and tonumber(m[7]) > 0 then
  local limit = math.max(tonumber(m[8]), 1)
  local elapsed = math.min(math.max(now - tonumber(m[3]), 0), limit)
  local num = tonumber(m[7]) * (2 * limit - elapsed)
  points = math.floor((2 * num + 2 * limit) / (4 * limit))
end
local total = -tonumber(redis.call('ZINCRBY', SCORES, -points, pad(pid)))
if points > 0 then top_changed() end
rec = int(choice) .. ':' .. int(points) .. ':' .. int(total)
redis.call('HSET', ANSWERS, akey, rec)
redis.call('HINCRBY', DIST, choice, 1)
local answered = redis.call('HINCRBY', META, 'answered', 1)
redis.call('HSET', META, 'lb_dirty', 1)
if answered >= tonumber(m[9]) then close(now, 'all_answered') end
return {'accepted', rec}
