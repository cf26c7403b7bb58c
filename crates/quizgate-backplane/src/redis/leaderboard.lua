-- Publishes a coalesced leaderboard if something changed and the interval passed.
if redis.call('EXISTS', META) == 0 then return 'gone' end
local m = redis.call('HMGET', META, 'lb_dirty', 'phase', 'lb_ms')
if m[1] ~= '1' or m[2] == 'ended' then return 'clean' end
local now, last = now_ms(), tonumber(m[3])
if last >= 0 and now < last + LB_INTERVAL then return 'soon' end
push_leaderboard(now)
return 'published'
