-- Publishes a coalesced leaderboard if something changed and the interval passed.
if redis.call('EXISTS', META) == 0 then return 'gone' end
local m = redis.call('HMGET', META, 'lb_dirty', 'phase', 'lb_ms', 'players')
-- As quizgate_domain::Quiz::leaderboard_due: only between questions.
if m[1] ~= '1' or m[2] ~= 'reveal' then return 'clean' end
local now, last = now_ms(), tonumber(m[3])
-- As quizgate_domain::leaderboard_interval.
local interval = math.max(LB_INTERVAL, math.floor(active_players() * 1000 / LB_BUDGET))
if last >= 0 and now < last + interval then return 'soon' end
push_leaderboard(now)
refresh()
return 'published'
